package laptop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"attune.dev/attune/capture"
	"github.com/at-wat/ebml-go"
)

// A Mark is a moment the practitioner marked during or after a recording.
type Mark struct {
	Offset time.Duration // from the start of the recording
	Label  string        // empty: "Mark N", N its rank by offset from 1
}

// ExportOptions tunes Export. The zero value is ready to use.
type ExportOptions struct {
	// ClusterDuration is the target length of a Cluster, and so the seek
	// granularity: a Cluster starts at the first video frame at or past it
	// (or at any block once a Cluster is twice as long, when video stalled).
	// Default 1 s, as the device writes.
	ClusterDuration time.Duration
	// Title is written as the Segment title, which players show. Optional.
	Title string
	// Date is the wall time the recording started, written as DateUTC.
	// Leave it zero when the device clock was not trusted.
	Date time.Time
	// WritingApp is recorded in Info. Default "attune".
	WritingApp string
	// Progress, if set, is called after each Cluster with the totals so far.
	Progress func(ExportInfo)
}

// ExportInfo summarises an export.
type ExportInfo struct {
	Duration     time.Duration // end of the last block: its time plus its length
	VideoFrames  int
	AudioSamples int64 // per channel
	Clusters     int
	Chapters     int   // marks written as chapters (marks past the end are not)
	Dropped      int   // blocks too far out of order to place (normally 0)
	Bytes        int64 // bytes written to out
}

// ErrDamaged is wrapped by the error Export returns when the stream holds
// something other than well-formed Matroska part-way through. The output is
// then nonetheless a finalized file of everything before the damage, and the
// ExportInfo describes it; the caller decides whether to keep it.
var ErrDamaged = errors.New("stream damaged")

// Export reads stream, the decrypted concatenation of a recording's segments
// (a live Matroska stream of MJPEG video and optional 16-bit PCM audio), and
// writes to out, from its current offset, a finalized Matroska file that
// players open, seek and show the length of:
//
//	EBML header (DocType matroska, version 4)
//	Segment (known size)
//	  SeekHead     → Info, Tracks, Cues, Chapters
//	  Void         (the rest of the space reserved for the SeekHead)
//	  Info         TimecodeScale 1 ms, Duration, MuxingApp, WritingApp
//	  Tracks       as in the stream: video track 1, audio track 2
//	  Cluster …    known sizes, about ClusterDuration each, each starting
//	               with a video frame; the blocks are copied unchanged
//	  Cues         one CuePoint per Cluster, on the video track
//	  Chapters     one ChapterAtom per mark, if there are marks
//
// Memory is bounded by one Cluster: blocks are read, buffered until their
// Cluster is complete, written and dropped. The header elements whose
// content is known only at the end (Segment size, SeekHead, Duration) are
// written as placeholders and patched in place through out's Seek; a file
// left behind by a crash during the export is still a playable live stream.
//
// A stream that is cut short (an interrupted recording, or one missing its
// last segments) exports everything up to its last complete block, without
// error. A stream damaged part-way exports what comes before the damage and
// returns an error wrapping ErrDamaged. Any other error (a stream that is not
// a recording, a write error, ctx ended) leaves out incomplete.
//
// Marks become chapters named by their labels, in offset order; a chapter
// ends where the next begins, the last at the end of the recording. Marks
// past the end of the recording are left out.
func Export(ctx context.Context, stream io.Reader, marks []Mark, out io.WriteSeeker, opts ExportOptions) (ExportInfo, error) {
	if opts.ClusterDuration <= 0 {
		opts.ClusterDuration = time.Second
	}
	if opts.WritingApp == "" {
		opts.WritingApp = "attune"
	}
	if err := ctx.Err(); err != nil {
		return ExportInfo{}, err
	}
	rd, err := capture.ReadStream(stream)
	if err != nil {
		return ExportInfo{}, fmt.Errorf("export: %w", err)
	}
	x, err := newExporter(ctx, out, rd.Tracks(), opts)
	if err != nil {
		return ExportInfo{}, fmt.Errorf("export: %w", err)
	}
	if err := x.writeHead(); err != nil {
		return x.info, fmt.Errorf("export: %w", err)
	}
	var damage error
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			damage = err
			break
		}
		if err := x.add(p); err != nil {
			return x.info, fmt.Errorf("export: %w", err)
		}
	}
	if err := x.flushCluster(); err != nil {
		return x.info, fmt.Errorf("export: %w", err)
	}
	if err := x.finish(marks); err != nil {
		return x.info, fmt.Errorf("export: %w", err)
	}
	if damage != nil {
		return x.info, fmt.Errorf("export: %w after %v; the file holds everything before it: %w",
			ErrDamaged, x.info.Duration.Round(time.Millisecond), damage)
	}
	return x.info, nil
}

// Matroska elements, marshalled by ebml-go from their struct tags.
type ebmlHeader struct {
	EBMLVersion        uint64 `ebml:"EBMLVersion"`
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeVersion     uint64 `ebml:"EBMLDocTypeVersion"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

type segmentInfo struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	Duration      float64   `ebml:"Duration"` // always 8 bytes: patched in place
	DateUTC       time.Time `ebml:"DateUTC,omitempty,size=8"`
	Title         string    `ebml:"Title,omitempty"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
}

type videoSettings struct {
	PixelWidth  uint64 `ebml:"PixelWidth"`
	PixelHeight uint64 `ebml:"PixelHeight"`
}

type audioSettings struct {
	SamplingFrequency float64 `ebml:"SamplingFrequency"`
	Channels          uint64  `ebml:"Channels"`
	BitDepth          uint64  `ebml:"BitDepth"`
}

type trackEntry struct {
	TrackNumber     uint64         `ebml:"TrackNumber"`
	TrackUID        uint64         `ebml:"TrackUID"`
	TrackType       uint64         `ebml:"TrackType"`
	FlagLacing      uint64         `ebml:"FlagLacing"`
	Language        string         `ebml:"Language"`
	CodecID         string         `ebml:"CodecID"`
	DefaultDuration uint64         `ebml:"DefaultDuration,omitempty"`
	Video           *videoSettings `ebml:"Video,omitempty"`
	Audio           *audioSettings `ebml:"Audio,omitempty"`
}

type seekEntry struct {
	SeekID       []byte `ebml:"SeekID"`
	SeekPosition uint64 `ebml:"SeekPosition"`
}

type cueTrackPositions struct {
	CueTrack            uint64 `ebml:"CueTrack"`
	CueClusterPosition  uint64 `ebml:"CueClusterPosition"`
	CueRelativePosition uint64 `ebml:"CueRelativePosition"`
}

type cuePoint struct {
	CueTime           uint64            `ebml:"CueTime"`
	CueTrackPositions cueTrackPositions `ebml:"CueTrackPositions"`
}

type chapterDisplay struct {
	ChapString   string `ebml:"ChapString"`
	ChapLanguage string `ebml:"ChapLanguage"`
}

type chapterAtom struct {
	ChapterUID       uint64         `ebml:"ChapterUID"`
	ChapterTimeStart uint64         `ebml:"ChapterTimeStart"`
	ChapterTimeEnd   uint64         `ebml:"ChapterTimeEnd,omitempty"`
	ChapterDisplay   chapterDisplay `ebml:"ChapterDisplay"`
}

type editionEntry struct {
	EditionUID  uint64        `ebml:"EditionUID"`
	ChapterAtom []chapterAtom `ebml:"ChapterAtom"`
}

// Top-level wrappers: ebml.Marshal writes a struct's fields as elements.
type (
	headerElem struct{ EBML ebmlHeader }
	infoElem   struct{ Info segmentInfo }
	tracksElem struct {
		Tracks struct{ TrackEntry []trackEntry }
	}
	seekHeadElem struct{ SeekHead struct{ Seek []seekEntry } }
	cuesElem     struct{ Cues struct{ CuePoint []cuePoint } }
	chaptersElem struct {
		Chapters struct{ EditionEntry editionEntry }
	}
)

// Element IDs written by hand or named in the SeekHead.
var (
	idSegment  = []byte{0x18, 0x53, 0x80, 0x67}
	idInfo     = []byte{0x15, 0x49, 0xA9, 0x66}
	idTracks   = []byte{0x16, 0x54, 0xAE, 0x6B}
	idCluster  = []byte{0x1F, 0x43, 0xB6, 0x75}
	idCues     = []byte{0x1C, 0x53, 0xBB, 0x6B}
	idChapters = []byte{0x10, 0x43, 0xA7, 0x70}
)

const (
	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
	idVoid        = 0xEC

	// seekHeadSpace is reserved for the SeekHead and the Void after it. Four
	// entries take at most 89 bytes.
	seekHeadSpace = 128

	timecodeScale = time.Millisecond
)

// exporter writes the output file; see Export for its layout. Offsets are
// relative to where out stood at the start.
type exporter struct {
	ctx  context.Context
	ws   io.WriteSeeker
	bw   *bufio.Writer
	base int64 // out's offset at the start
	pos  int64 // bytes written so far
	opts ExportOptions

	tracks   []capture.Track
	number   map[capture.Kind]uint64
	frameDur time.Duration // video DefaultDuration, 0 if unknown
	audio    capture.Track

	segData    int64 // offset of the Segment's body
	segSizeAt  int64 // offset of the Segment's 8-byte size
	infoAt     int64
	infoLen    int
	infoElem   infoElem
	tracksAt   int64
	seekHeadAt int64

	cl        []capture.Packet // the Cluster being gathered
	clTC      int64            // its timecode, in TimecodeScale units
	clStart   time.Duration
	cues      []cuePoint
	lastVideo time.Duration // PTS of the last video frame, -1 before the first
	videoGap  time.Duration // interval before it
	end       time.Duration
	info      ExportInfo
	scratch   []byte
}

func newExporter(ctx context.Context, out io.WriteSeeker, tracks []capture.Track, opts ExportOptions) (*exporter, error) {
	base, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("output must be seekable: %w", err)
	}
	x := &exporter{
		ctx: ctx, ws: out, bw: bufio.NewWriterSize(out, 256<<10), base: base, opts: opts,
		number: map[capture.Kind]uint64{}, lastVideo: -1,
	}
	for _, t := range tracks {
		if _, dup := x.number[t.Kind]; dup {
			continue
		}
		switch t.Kind {
		case capture.Video:
			if t.FPS > 0 {
				x.frameDur = time.Duration(math.Round(float64(time.Second) / t.FPS))
			}
		case capture.Audio:
			if t.SampleRate <= 0 || t.Channels <= 0 {
				return nil, fmt.Errorf("audio track of %d Hz, %d channels", t.SampleRate, t.Channels)
			}
			x.audio = t
		default:
			continue
		}
		x.tracks = append(x.tracks, t)
		x.number[t.Kind] = uint64(len(x.tracks))
	}
	return x, nil
}

func (x *exporter) Write(p []byte) (int, error) {
	n, err := x.bw.Write(p)
	x.pos += int64(n)
	return n, err
}

func (x *exporter) marshal(v any) error { return ebml.Marshal(v, x) }

// writeHead writes everything before the first Cluster. The Segment size
// is written as unknown and the SeekHead space as a Void, so that until
// finish patches them the file is a valid live stream.
func (x *exporter) writeHead() error {
	err := x.marshal(&headerElem{ebmlHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2,
	}})
	if err != nil {
		return err
	}
	x.Write(idSegment)
	x.segSizeAt = x.pos
	x.Write([]byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	x.segData = x.pos

	x.seekHeadAt = x.pos
	x.Write(voidElement(seekHeadSpace))

	x.infoAt = x.pos
	x.infoElem.Info = segmentInfo{
		TimecodeScale: uint64(timecodeScale / time.Nanosecond),
		Title:         x.opts.Title,
		MuxingApp:     "attune",
		WritingApp:    x.opts.WritingApp,
	}
	if !x.opts.Date.IsZero() {
		x.infoElem.Info.DateUTC = x.opts.Date.UTC()
	}
	if err := x.marshal(&x.infoElem); err != nil {
		return err
	}
	x.infoLen = int(x.pos - x.infoAt)

	x.tracksAt = x.pos
	var te tracksElem
	for i, t := range x.tracks {
		e := trackEntry{TrackNumber: uint64(i + 1), TrackUID: uint64(i + 1), Language: "und", CodecID: t.Codec}
		switch t.Kind {
		case capture.Video:
			e.TrackType = 1
			e.DefaultDuration = uint64(x.frameDur)
			e.Video = &videoSettings{PixelWidth: uint64(t.Width), PixelHeight: uint64(t.Height)}
		case capture.Audio:
			e.TrackType = 2
			e.Audio = &audioSettings{SamplingFrequency: float64(t.SampleRate), Channels: uint64(t.Channels), BitDepth: 16}
		}
		te.Tracks.TrackEntry = append(te.Tracks.TrackEntry, e)
	}
	return x.marshal(&te)
}

// add places a block in the Cluster being gathered, first writing that
// Cluster out if the block starts a new one.
func (x *exporter) add(p capture.Packet) error {
	if _, ok := x.number[p.Kind]; !ok {
		return nil
	}
	tc := int64(p.PTS / timecodeScale)
	if len(x.cl) > 0 {
		age := p.PTS - x.clStart
		cut := age >= x.opts.ClusterDuration && p.Kind == capture.Video ||
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
		x.clStart = time.Duration(x.clTC) * timecodeScale
	}
	if tc-x.clTC < math.MinInt16 {
		x.info.Dropped++ // far out of order: Matroska cannot place it here
		return nil
	}
	x.cl = append(x.cl, p)

	var dur time.Duration
	switch p.Kind {
	case capture.Video:
		x.info.VideoFrames++
		if x.lastVideo >= 0 && p.PTS > x.lastVideo {
			x.videoGap = p.PTS - x.lastVideo
		}
		x.lastVideo = p.PTS
		dur = x.frameDur
		if dur == 0 {
			dur = x.videoGap
		}
	case capture.Audio:
		n := int64(len(p.Data) / (2 * x.audio.Channels))
		x.info.AudioSamples += n
		dur = time.Duration(n * int64(time.Second) / int64(x.audio.SampleRate))
	}
	x.end = max(x.end, p.PTS+dur)
	x.info.Duration = x.end
	return nil
}

// flushCluster writes the gathered Cluster with its size, and notes its Cue.
func (x *exporter) flushCluster() error {
	if len(x.cl) == 0 {
		return nil
	}
	if err := x.ctx.Err(); err != nil {
		return err
	}
	tcBytes := appendUint(nil, uint64(x.clTC))
	size := int64(2 + len(tcBytes))
	for _, p := range x.cl {
		n := int64(4 + len(p.Data))
		size += 1 + vintLen(uint64(n)) + n
	}

	at := x.pos - x.segData
	b := append(x.scratch[:0], idCluster...)
	b = appendVint(b, uint64(size))
	body := x.pos + int64(len(b))
	b = append(b, idTimecode, 0x80|byte(len(tcBytes)))
	b = append(b, tcBytes...)
	x.Write(b)

	cued := false
	for _, p := range x.cl {
		if p.Kind == capture.Video && !cued {
			cued = true
			x.cues = append(x.cues, cuePoint{
				CueTime: uint64(max(0, p.PTS/timecodeScale)),
				CueTrackPositions: cueTrackPositions{
					CueTrack:            x.number[capture.Video],
					CueClusterPosition:  uint64(at),
					CueRelativePosition: uint64(x.pos - body),
				},
			})
		}
		rel := int64(p.PTS/timecodeScale) - x.clTC
		var flags byte
		if p.Key {
			flags |= 0x80
		}
		b = append(b[:0], idSimpleBlock)
		b = appendVint(b, uint64(4+len(p.Data)))
		b = append(b, 0x80|byte(x.number[p.Kind]), byte(uint16(rel)>>8), byte(uint16(rel)), flags)
		x.Write(b)
		if _, err := x.Write(p.Data); err != nil {
			return err
		}
	}
	x.scratch = b
	if x.pos-body != size {
		return fmt.Errorf("internal error: cluster at %d is %d bytes, not %d", at, x.pos-body, size)
	}
	clear(x.cl) // drop the frames for the collector
	x.cl = x.cl[:0]
	x.info.Clusters++
	x.info.Bytes = x.pos
	if x.opts.Progress != nil {
		x.opts.Progress(x.info)
	}
	return nil
}

// finish writes Cues and Chapters, then patches the Segment size, SeekHead
// and Duration, and leaves out at the end of the file.
func (x *exporter) finish(marks []Mark) error {
	seeks := []seekEntry{
		{SeekID: idInfo, SeekPosition: uint64(x.infoAt - x.segData)},
		{SeekID: idTracks, SeekPosition: uint64(x.tracksAt - x.segData)},
	}
	if len(x.cues) > 0 {
		seeks = append(seeks, seekEntry{SeekID: idCues, SeekPosition: uint64(x.pos - x.segData)})
		var c cuesElem
		c.Cues.CuePoint = x.cues
		if err := x.marshal(&c); err != nil {
			return err
		}
	}
	if atoms := chapterAtoms(marks, x.end); len(atoms) > 0 {
		seeks = append(seeks, seekEntry{SeekID: idChapters, SeekPosition: uint64(x.pos - x.segData)})
		var c chaptersElem
		c.Chapters.EditionEntry = editionEntry{EditionUID: 1, ChapterAtom: atoms}
		if err := x.marshal(&c); err != nil {
			return err
		}
		x.info.Chapters = len(atoms)
	}
	if err := x.bw.Flush(); err != nil {
		return err
	}
	end := x.pos
	x.info.Bytes = end

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

	x.infoElem.Info.Duration = float64(x.end) / float64(timecodeScale)
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

	segSize := uint64(end - x.segData)
	var sz [8]byte
	sz[0] = 0x01
	for i := 1; i < 8; i++ {
		sz[i] = byte(segSize >> (8 * (7 - i)))
	}
	if err := x.patch(x.segSizeAt, sz[:]); err != nil {
		return err
	}
	_, err := x.ws.Seek(x.base+end, io.SeekStart)
	return err
}

// patch overwrites bytes already written, at offset off.
func (x *exporter) patch(off int64, b []byte) error {
	if _, err := x.ws.Seek(x.base+off, io.SeekStart); err != nil {
		return err
	}
	_, err := x.ws.Write(b)
	return err
}

// chapterAtoms turns marks into chapters of a recording of length end.
func chapterAtoms(marks []Mark, end time.Duration) []chapterAtom {
	var atoms []chapterAtom
	ms := namedMarks(marks)
	for _, m := range ms {
		if m.at > end {
			break
		}
		atoms = append(atoms, chapterAtom{
			ChapterUID:       uint64(len(atoms) + 1),
			ChapterTimeStart: uint64(m.at),
			ChapterDisplay:   chapterDisplay{ChapString: m.label, ChapLanguage: "und"},
		})
	}
	for i := range atoms {
		stop := uint64(end)
		if i+1 < len(atoms) {
			stop = atoms[i+1].ChapterTimeStart
		}
		if stop > atoms[i].ChapterTimeStart {
			atoms[i].ChapterTimeEnd = stop
		}
	}
	return atoms
}

// voidElement returns a Void element of exactly n bytes, 2 <= n <= 128.
func voidElement(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = idVoid, 0x80|byte(n-2)
	return b
}

// vintLen is the length of the shortest EBML size encoding of n.
func vintLen(n uint64) int64 {
	k := int64(1)
	for n >= 1<<(7*k)-1 { // all ones means "unknown"
		k++
	}
	return k
}

// appendVint appends n as the shortest EBML size.
func appendVint(b []byte, n uint64) []byte {
	k := vintLen(n)
	v := n | 1<<(7*k)
	for i := k - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// appendUint appends n as an EBML unsigned integer in as few bytes as hold it.
func appendUint(b []byte, n uint64) []byte {
	k := 1
	for k < 8 && n>>(8*k) != 0 {
		k++
	}
	for i := k - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}
