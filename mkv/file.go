package mkv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/at-wat/ebml-go"
)

// FileOptions tunes the finalizing writer. The zero value is ready to use.
type FileOptions struct {
	// ClusterDuration is the target length of a Cluster, and so the seek
	// granularity: a Cluster starts at the first video frame at or past it
	// (or at any block once a Cluster is twice as long, when video stalled).
	// Default 1 s.
	ClusterDuration time.Duration
	// Title is written as the Segment title, which players show. Optional.
	Title string
	// Date is the wall time the recording started, written as DateUTC.
	// Leave it zero when it is not known.
	Date time.Time
	// WritingApp is recorded in Info. Default "attune".
	WritingApp string
	// Progress, if set, is called after each Cluster with the totals so far.
	Progress func(FileStats)
}

// FileStats summarises what a FileWriter has written.
type FileStats struct {
	Duration     time.Duration // end of the last block: its time plus its length
	VideoFrames  int
	AudioSamples int64 // per channel
	Clusters     int
	Chapters     int   // chapters written by Finish
	Dropped      int   // blocks too far out of order to place (normally 0)
	Bytes        int64 // bytes written to out
}

// A Chapter is a named span of the recording. End zero (or not after Start)
// leaves the chapter's end to the player.
type Chapter struct {
	Start, End time.Duration
	Title      string
}

// A FileWriter writes a finalized Matroska file that players open, seek and
// show the length of:
//
//	EBML header (DocType matroska, version 4)
//	Segment (known size)
//	  SeekHead     → Info, Tracks, Cues, Chapters
//	  Void         (the rest of the space reserved for the SeekHead)
//	  Info         TimecodeScale 1 ms, Duration, MuxingApp, WritingApp
//	  Tracks       video track 1, audio track 2 (at most one of each)
//	  Cluster …    known sizes, about ClusterDuration each, each starting
//	               with a video frame; the blocks are copied unchanged
//	  Cues         one CuePoint per Cluster, on the video track
//	  Chapters     one ChapterAtom per chapter, if there are any
//
// Memory is bounded by one Cluster: blocks are copied into a buffer until
// their Cluster is complete and written, and the buffer is reused. The header elements whose content is
// known only at the end (Segment size, SeekHead, Duration) are written as
// placeholders and patched in place through out's Seek by Finish; a file
// left behind before Finish is still a playable live stream.
type FileWriter struct {
	ws   io.WriteSeeker
	bw   *bufio.Writer
	w    ebmlWriter // writes to bw; offsets are relative to base
	base int64      // out's offset at the start
	opts FileOptions

	tracks   []Track
	number   map[Kind]uint64
	frameDur time.Duration // video DefaultDuration, 0 if unknown
	audio    Track

	segData    int64 // offset of the Segment's body
	segSizeAt  int64 // offset of the Segment's 8-byte size
	infoAt     int64
	infoLen    int
	infoElem   fileInfoElem
	tracksAt   int64
	seekHeadAt int64

	cl        []Packet // the Cluster being gathered, their data in clData
	clData    []byte
	clTC      int64 // its timecode, in TimecodeScale units
	clStart   time.Duration
	cues      []cuePoint
	lastVideo time.Duration // PTS of the last video frame, -1 before the first
	videoGap  time.Duration // interval before it
	end       time.Duration
	stats     FileStats
	scratch   []byte
}

// seekHeadSpace is reserved for the SeekHead and the Void after it. Four
// entries take at most 89 bytes.
const seekHeadSpace = 128

// NewFileWriter writes everything before the first Cluster to out, from its
// current offset, for the first video and the first audio track of tracks
// (others are left out, and so are their packets).
func NewFileWriter(out io.WriteSeeker, tracks []Track, opts FileOptions) (*FileWriter, error) {
	if opts.ClusterDuration <= 0 {
		opts.ClusterDuration = time.Second
	}
	if opts.WritingApp == "" {
		opts.WritingApp = "attune"
	}
	base, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("output must be seekable: %w", err)
	}
	x := &FileWriter{
		ws: out, bw: bufio.NewWriterSize(out, 256<<10), base: base, opts: opts,
		number: map[Kind]uint64{}, lastVideo: -1,
	}
	x.w.w = x.bw
	for _, t := range tracks {
		if _, dup := x.number[t.Kind]; dup {
			continue
		}
		switch t.Kind {
		case Video:
			if t.FPS > 0 {
				x.frameDur = time.Duration(math.Round(float64(time.Second) / t.FPS))
			}
		case Audio:
			if t.SampleRate <= 0 || t.Channels <= 0 {
				return nil, fmt.Errorf("audio track of %d Hz, %d channels", t.SampleRate, t.Channels)
			}
			t.BitDepth = 16
			x.audio = t
		default:
			continue
		}
		x.tracks = append(x.tracks, t)
		x.number[t.Kind] = uint64(len(x.tracks))
	}
	if err := x.writeHead(); err != nil {
		return nil, err
	}
	return x, nil
}

// Stats returns the totals so far.
func (x *FileWriter) Stats() FileStats { return x.stats }

// writeHead writes everything before the first Cluster. The Segment size
// is written as unknown and the SeekHead space as a Void, so that until
// Finish patches them the file is a valid live stream.
func (x *FileWriter) writeHead() error {
	if err := x.w.marshal(&theHeader); err != nil {
		return err
	}
	x.w.Write(idBytes(eidSegment))
	x.segSizeAt = x.w.pos
	x.w.Write(unknownSize)
	x.segData = x.w.pos

	x.seekHeadAt = x.w.pos
	x.w.Write(voidElement(seekHeadSpace))

	x.infoAt = x.w.pos
	x.infoElem.Info = fileInfo{
		TimecodeScale: uint64(TimecodeScale / time.Nanosecond),
		Title:         x.opts.Title,
		MuxingApp:     "attune",
		WritingApp:    x.opts.WritingApp,
	}
	if !x.opts.Date.IsZero() {
		x.infoElem.Info.DateUTC = x.opts.Date.UTC()
	}
	if err := x.w.marshal(&x.infoElem); err != nil {
		return err
	}
	x.infoLen = int(x.w.pos - x.infoAt)

	x.tracksAt = x.w.pos
	te := trackEntries(x.tracks, "und", x.frameDur)
	return x.w.marshal(&te)
}

// WritePacket places a block in the Cluster being gathered, first writing
// that Cluster out if the block starts a new one. Packets of a kind without
// a track are left out. The data is copied: p.Data may be reused once
// WritePacket returns.
func (x *FileWriter) WritePacket(p Packet) error {
	if _, ok := x.number[p.Kind]; !ok {
		return nil
	}
	tc := int64(p.PTS / TimecodeScale)
	if len(x.cl) > 0 {
		age := p.PTS - x.clStart
		cut := age >= x.opts.ClusterDuration && p.Kind == Video ||
			age >= 2*x.opts.ClusterDuration ||
			tc-x.clTC > math.MaxInt16
		if cut {
			if err := x.flushCluster(); err != nil {
				return err
			}
		}
	}
	if len(x.cl) == 0 {
		x.clTC = max(0, tc)
		x.clStart = time.Duration(x.clTC) * TimecodeScale
	}
	if tc-x.clTC < math.MinInt16 {
		x.stats.Dropped++ // far out of order: Matroska cannot place it here
		return nil
	}
	at := len(x.clData)
	x.clData = append(x.clData, p.Data...)
	p.Data = x.clData[at:len(x.clData):len(x.clData)] // a larger clData later leaves this one whole
	x.cl = append(x.cl, p)

	var dur time.Duration
	switch p.Kind {
	case Video:
		x.stats.VideoFrames++
		if x.lastVideo >= 0 && p.PTS > x.lastVideo {
			x.videoGap = p.PTS - x.lastVideo
		}
		x.lastVideo = p.PTS
		dur = x.frameDur
		if dur == 0 {
			dur = x.videoGap
		}
	case Audio:
		n := int64(len(p.Data) / (2 * x.audio.Channels))
		x.stats.AudioSamples += n
		dur = time.Duration(n * int64(time.Second) / int64(x.audio.SampleRate))
	}
	x.end = max(x.end, p.PTS+dur)
	x.stats.Duration = x.end
	return nil
}

// flushCluster writes the gathered Cluster with its size, and notes its Cue.
func (x *FileWriter) flushCluster() error {
	if len(x.cl) == 0 {
		return nil
	}
	size := int64(2 + uintLen(uint64(x.clTC)))
	for _, p := range x.cl {
		size += simpleBlockLen(len(p.Data))
	}

	at := x.w.pos - x.segData
	b := appendID(x.scratch[:0], eidCluster)
	b = appendVint(b, uint64(size))
	body := x.w.pos + int64(len(b))
	b = appendUintElem(b, eidTimecode, uint64(x.clTC))
	x.w.Write(b)

	cued := false
	for _, p := range x.cl {
		if p.Kind == Video && !cued {
			cued = true
			x.cues = append(x.cues, cuePoint{
				CueTime: uint64(max(0, p.PTS/TimecodeScale)),
				CueTrackPositions: cueTrackPositions{
					CueTrack:            x.number[Video],
					CueClusterPosition:  uint64(at),
					CueRelativePosition: uint64(x.w.pos - body),
				},
			})
		}
		rel := int64(p.PTS/TimecodeScale) - x.clTC
		b = appendSimpleBlock(b[:0], x.number[p.Kind], int16(rel), p.Key, len(p.Data), false)
		x.w.Write(b)
		if _, err := x.w.Write(p.Data); err != nil {
			return err
		}
	}
	x.scratch = b
	if x.w.pos-body != size {
		return fmt.Errorf("internal error: cluster at %d is %d bytes, not %d", at, x.w.pos-body, size)
	}
	clear(x.cl)
	x.cl, x.clData = x.cl[:0], x.clData[:0]
	x.stats.Clusters++
	x.stats.Bytes = x.w.pos
	if x.opts.Progress != nil {
		x.opts.Progress(x.stats)
	}
	return nil
}

// Finish writes the last Cluster, Cues and chapters (in the order given),
// then patches the Segment size, SeekHead and Duration, and leaves out at
// the end of the file.
func (x *FileWriter) Finish(chapters []Chapter) error {
	if err := x.flushCluster(); err != nil {
		return err
	}
	seeks := []seekEntry{
		{SeekID: idBytes(eidInfo), SeekPosition: uint64(x.infoAt - x.segData)},
		{SeekID: idBytes(eidTracks), SeekPosition: uint64(x.tracksAt - x.segData)},
	}
	if len(x.cues) > 0 {
		seeks = append(seeks, seekEntry{SeekID: idBytes(eidCues), SeekPosition: uint64(x.w.pos - x.segData)})
		var c cuesElem
		c.Cues.CuePoint = x.cues
		if err := x.w.marshal(&c); err != nil {
			return err
		}
	}
	if len(chapters) > 0 {
		atoms := make([]chapterAtom, len(chapters))
		for i, ch := range chapters {
			atoms[i] = chapterAtom{
				ChapterUID:       uint64(i + 1),
				ChapterTimeStart: uint64(ch.Start),
				ChapterDisplay:   chapterDisplay{ChapString: ch.Title, ChapLanguage: "und"},
			}
			if ch.End > ch.Start {
				atoms[i].ChapterTimeEnd = uint64(ch.End)
			}
		}
		seeks = append(seeks, seekEntry{SeekID: idBytes(eidChapters), SeekPosition: uint64(x.w.pos - x.segData)})
		var c chaptersElem
		c.Chapters.EditionEntry = editionEntry{EditionUID: 1, ChapterAtom: atoms}
		if err := x.w.marshal(&c); err != nil {
			return err
		}
		x.stats.Chapters = len(atoms)
	}
	if err := x.bw.Flush(); err != nil {
		return err
	}
	end := x.w.pos
	x.stats.Bytes = end

	var sh seekHeadElem
	sh.SeekHead.Seek = seeks
	var buf bytes.Buffer
	if err := ebml.Marshal(&sh, &buf); err != nil {
		return err
	}
	if buf.Len() > seekHeadSpace-2 {
		return fmt.Errorf("internal error: SeekHead of %d bytes", buf.Len())
	}
	buf.Write(voidElement(seekHeadSpace - buf.Len()))
	if err := x.patch(x.seekHeadAt, buf.Bytes()); err != nil {
		return err
	}

	x.infoElem.Info.Duration = float64(x.end) / float64(TimecodeScale)
	buf.Reset()
	if err := ebml.Marshal(&x.infoElem, &buf); err != nil {
		return err
	}
	if buf.Len() != x.infoLen {
		return fmt.Errorf("internal error: Info grew from %d to %d bytes", x.infoLen, buf.Len())
	}
	if err := x.patch(x.infoAt, buf.Bytes()); err != nil {
		return err
	}

	if err := x.patch(x.segSizeAt, appendSize8(nil, uint64(end-x.segData))); err != nil {
		return err
	}
	_, err := x.ws.Seek(x.base+end, io.SeekStart)
	return err
}

// patch overwrites bytes already written, at offset off.
func (x *FileWriter) patch(off int64, b []byte) error {
	if _, err := x.ws.Seek(x.base+off, io.SeekStart); err != nil {
		return err
	}
	_, err := x.ws.Write(b)
	return err
}
