package mov

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"attune.dev/attune/mkv"
)

// Time scales: ticks per second of the movie (mvhd, tkhd, elst) and of the
// video media (stts). The audio's media time scale is its sample rate.
const (
	movieScale = 90000
	videoScale = 90000
)

// A Writer writes a QuickTime movie of MJPEG video ('jpeg', every frame a
// key frame) and, optionally, 16-bit little-endian PCM audio ('sowt'). Each
// packet is one chunk of the 'mdat', written as it comes; the sample tables
// are kept in memory (a few bytes a packet) and written at Close, which
// patches the 'mdat' size through out's Seek.
type Writer struct {
	out     io.WriteSeeker
	video   mkv.Track
	audio   *mkv.Track
	vt, at  track
	pos     int64 // bytes written so far
	mdatPos int64 // offset of the mdat header
	closed  bool
	err     error
}

// track is what the sample tables of one track are made from: one chunk a
// packet.
type track struct {
	started bool
	start   time.Duration   // PTS of the first packet
	pts     []time.Duration // video: every frame's PTS
	offsets []int64         // each chunk's offset in the file
	sizes   []uint32        // video: each frame's size
	counts  []uint32        // audio: sample frames in each chunk
	samples int64           // audio: sample frames in all
}

// NewWriter writes the head of a QuickTime movie holding video (MJPEG with
// a size) and, if audio is not nil, audio (16-bit PCM).
func NewWriter(out io.WriteSeeker, video mkv.Track, audio *mkv.Track) (*Writer, error) {
	if video.Codec != mkv.CodecMJPEG || video.Width <= 0 || video.Height <= 0 || video.Width > math.MaxUint16 || video.Height > math.MaxUint16 {
		return nil, errors.New("mov: the video must be MJPEG with a size")
	}
	if audio != nil {
		if audio.Codec != mkv.CodecPCMS16 || audio.SampleRate <= 0 || audio.Channels <= 0 || audio.Channels > math.MaxUint16 {
			return nil, errors.New("mov: the audio must be 16-bit PCM")
		}
		if audio.SampleRate > math.MaxUint16 {
			return nil, fmt.Errorf("mov: a sample rate of %d Hz is over QuickTime's 65535 Hz for PCM; export Matroska instead", audio.SampleRate)
		}
	}
	w := &Writer{out: out, video: video, audio: audio}
	w.write(atom("ftyp", []byte("qt  "), be32(nil, 0x200), []byte("qt  ")))
	w.mdatPos = w.pos
	// size 1: the 64-bit size follows the type, patched at Close.
	w.write(append(be32(nil, 1), "mdat\x00\x00\x00\x00\x00\x00\x00\x00"...))
	return w, w.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.out.Write(b)
	w.pos += int64(n)
	if err != nil {
		w.err = fmt.Errorf("mov: %w", err)
	}
}

// WritePacket writes a frame (a whole JPEG) or a run of audio sample frames
// as the next chunk. Audio packets of a movie without audio are dropped.
func (w *Writer) WritePacket(p mkv.Packet) error {
	if w.closed {
		return errors.New("mov: write after close")
	}
	if w.err != nil {
		return w.err
	}
	if uint64(len(p.Data)) > math.MaxUint32 {
		return errors.New("mov: a packet over 4 GB")
	}
	var t *track
	switch {
	case p.Kind == mkv.Video:
		if len(p.Data) == 0 {
			return errors.New("mov: an empty video frame")
		}
		t = &w.vt
		t.pts = append(t.pts, p.PTS)
		t.sizes = append(t.sizes, uint32(len(p.Data)))
	case p.Kind == mkv.Audio && w.audio != nil:
		fb := 2 * w.audio.Channels
		if len(p.Data)%fb != 0 {
			return fmt.Errorf("mov: an audio packet of %d bytes is not whole sample frames of %d bytes", len(p.Data), fb)
		}
		if len(p.Data) == 0 {
			return nil
		}
		t = &w.at
		n := len(p.Data) / fb
		t.counts = append(t.counts, uint32(n))
		t.samples += int64(n)
	default:
		return nil
	}
	if !t.started {
		t.started, t.start = true, p.PTS
	}
	t.offsets = append(t.offsets, w.pos)
	w.write(p.Data)
	return w.err
}

// Close writes the 'moov' after the samples and patches the 'mdat' size.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	mdatEnd := w.pos
	moov, err := w.moov()
	if err != nil {
		w.err = err
		return err
	}
	w.write(moov)
	end := w.pos
	if w.err == nil {
		if _, err := w.out.Seek(w.mdatPos+8, io.SeekStart); err != nil {
			w.err = fmt.Errorf("mov: %w", err)
		}
	}
	w.write(be64(nil, uint64(mdatEnd-w.mdatPos)))
	if w.err == nil {
		if _, err := w.out.Seek(end, io.SeekStart); err != nil {
			w.err = fmt.Errorf("mov: %w", err)
		}
	}
	return w.err
}

// ticks is d in units of 1/scale s, rounded to the nearest.
func ticks(d time.Duration, scale int64) int64 {
	neg := d < 0
	if neg {
		d = -d
	}
	s := int64(d)/1e9*scale + (int64(d)%1e9*scale+5e8)/1e9
	if neg {
		return -s
	}
	return s
}

// frameDurations are the video samples' durations in videoScale ticks:
// from each frame's PTS to the next one's (at least a tick), the last one
// the nominal 1/FPS.
func (w *Writer) frameDurations() []uint32 {
	fps := w.video.FPS
	if fps <= 0 {
		fps = 30
	}
	nominal := uint32(max(1, math.Round(videoScale/fps)))
	d := make([]uint32, len(w.vt.pts))
	for i := range d {
		if i == len(d)-1 {
			d[i] = nominal
			break
		}
		a, b := ticks(w.vt.pts[i]-w.vt.start, videoScale), ticks(w.vt.pts[i+1]-w.vt.start, videoScale)
		d[i] = uint32(min(max(1, b-a), math.MaxUint32))
	}
	return d
}

// trackBox is what moov needs of one track besides its sample tables.
type trackBox struct {
	id       uint32
	sound    bool
	scale    int64 // media time scale
	duration int64 // in media time scale
	delay    int64 // movie time before its first sample, in movieScale
	stbl     []byte
}

func (w *Writer) moov() ([]byte, error) {
	var tracks []trackBox
	origin := w.vt.start
	if w.at.started && (!w.vt.started || w.at.start < origin) {
		origin = w.at.start
	}
	durs := w.frameDurations()
	var vdur int64
	for _, d := range durs {
		vdur += int64(d)
	}
	tracks = append(tracks, trackBox{id: 1, scale: videoScale, duration: vdur,
		delay: ticks(w.vt.start-origin, movieScale), stbl: w.videoTables(durs)})
	if w.audio != nil {
		tracks = append(tracks, trackBox{id: 2, sound: true, scale: int64(w.audio.SampleRate), duration: w.at.samples,
			delay: ticks(w.at.start-origin, movieScale), stbl: w.audioTables()})
	}
	var traks [][]byte
	var movieDur int64
	for _, t := range tracks {
		b, d, err := trak(t, w.video)
		if err != nil {
			return nil, err
		}
		traks = append(traks, b)
		movieDur = max(movieDur, d)
	}
	mvhd := be32(nil, 0) // version, flags
	mvhd = be32(mvhd, 0) // creation time
	mvhd = be32(mvhd, 0) // modification time
	mvhd = be32(mvhd, movieScale)
	mvhd = be32(mvhd, uint32(movieDur))
	mvhd = be32(mvhd, 0x00010000) // preferred rate 1.0
	mvhd = be16(mvhd, 0x0100)     // preferred volume 1.0
	mvhd = append(mvhd, make([]byte, 10)...)
	mvhd = matrix(mvhd)
	mvhd = append(mvhd, make([]byte, 6*4)...) // preview, poster, selection, current time
	mvhd = be32(mvhd, uint32(len(tracks)+1))  // next track ID
	return atom("moov", append([][]byte{atom("mvhd", mvhd)}, traks...)...), nil
}

// trak is one track's box and its duration in movie time.
func trak(t trackBox, video mkv.Track) ([]byte, int64, error) {
	// The edit: the media whole, rounded up so no sample falls off its end.
	mediaMovie := (t.duration*movieScale + t.scale - 1) / t.scale
	total := t.delay + mediaMovie
	if t.duration > math.MaxUint32 || total > math.MaxUint32 {
		return nil, 0, errors.New("mov: the clip is too long for a QuickTime movie (over 13 hours); make it shorter")
	}
	tkhd := be32(nil, 0x3) // version 0; enabled, in movie
	tkhd = be32(tkhd, 0)   // creation time
	tkhd = be32(tkhd, 0)   // modification time
	tkhd = be32(tkhd, t.id)
	tkhd = be32(tkhd, 0) // reserved
	tkhd = be32(tkhd, uint32(total))
	tkhd = append(tkhd, make([]byte, 8)...) // reserved
	tkhd = be16(tkhd, 0)                    // layer
	tkhd = be16(tkhd, 0)                    // alternate group
	if t.sound {
		tkhd = be16(tkhd, 0x0100) // volume 1.0
	} else {
		tkhd = be16(tkhd, 0)
	}
	tkhd = be16(tkhd, 0) // reserved
	tkhd = matrix(tkhd)
	if t.sound {
		tkhd = be32(be32(tkhd, 0), 0)
	} else {
		tkhd = be32(tkhd, uint32(video.Width)<<16)
		tkhd = be32(tkhd, uint32(video.Height)<<16)
	}

	var edits [][3]uint32 // track duration (movie time), media time, rate
	if t.delay > 0 {
		edits = append(edits, [3]uint32{uint32(t.delay), math.MaxUint32, 0x00010000}) // empty edit: media time -1
	}
	edits = append(edits, [3]uint32{uint32(mediaMovie), 0, 0x00010000})
	elst := be32(nil, 0)
	elst = be32(elst, uint32(len(edits)))
	for _, e := range edits {
		elst = be32(be32(be32(elst, e[0]), e[1]), e[2])
	}

	mdhd := be32(nil, 0) // version, flags
	mdhd = be32(mdhd, 0) // creation time
	mdhd = be32(mdhd, 0) // modification time
	mdhd = be32(mdhd, uint32(t.scale))
	mdhd = be32(mdhd, uint32(t.duration))
	mdhd = be16(mdhd, 0x55C4) // language: 'und', packed ISO 639-2
	mdhd = be16(mdhd, 0)      // quality

	subtype, name, header := "vide", "VideoHandler", vmhd()
	if t.sound {
		subtype, name = "soun", "SoundHandler"
		header = atom("smhd", be32(nil, 0), be32(nil, 0)) // version, flags; balance, reserved
	}
	dref := atom("dref", be32(nil, 0), be32(nil, 1),
		atom("alis", be32(nil, 1))) // flags 1: the media is in this file
	minf := atom("minf", header,
		hdlr("dhlr", "alis", "DataHandler"),
		atom("dinf", dref),
		t.stbl)
	mdia := atom("mdia", atom("mdhd", mdhd), hdlr("mhlr", subtype, name), minf)
	return atom("trak", atom("tkhd", tkhd), atom("edts", atom("elst", elst)), mdia), total, nil
}

// vmhd is the video media information header: graphics mode ditherCopy,
// opcolor unused.
func vmhd() []byte {
	b := be32(nil, 1) // version 0, flags 1 (no lean ahead)
	b = be16(b, 0x40)
	return atom("vmhd", be16(be16(be16(b, 0x8000), 0x8000), 0x8000))
}

// hdlr is a QuickTime handler reference, its name a Pascal string.
func hdlr(typ, subtype, name string) []byte {
	b := be32(nil, 0)
	b = append(b, typ...)
	b = append(b, subtype...)
	b = append(b, make([]byte, 12)...) // manufacturer, flags, flags mask
	b = append(b, byte(len(name)))
	return atom("hdlr", append(b, name...))
}

func (w *Writer) videoTables(durs []uint32) []byte {
	// Photo-JPEG sample description.
	d := make([]byte, 6) // reserved
	d = be16(d, 1)       // data reference index
	d = be16(d, 0)       // version
	d = be16(d, 0)       // revision level
	d = be32(d, 0)       // vendor
	d = be32(d, 0)       // temporal quality
	d = be32(d, 0x200)   // spatial quality: codecNormalQuality
	d = be16(d, uint16(w.video.Width))
	d = be16(d, uint16(w.video.Height))
	d = be32(d, 72<<16) // horizontal resolution, 72 dpi
	d = be32(d, 72<<16) // vertical resolution
	d = be32(d, 0)      // data size
	d = be16(d, 1)      // frames per sample
	name := make([]byte, 32)
	name[0] = byte(copy(name[1:], "Photo - JPEG"))
	d = append(d, name...)
	d = be16(d, 24)     // depth
	d = be16(d, 0xFFFF) // color table ID: none
	stsd := atom("stsd", be32(nil, 0), be32(nil, 1), atom("jpeg", d))

	// stts: runs of equal durations.
	var runs [][2]uint32
	for _, du := range durs {
		if n := len(runs); n > 0 && runs[n-1][1] == du {
			runs[n-1][0]++
		} else {
			runs = append(runs, [2]uint32{1, du})
		}
	}
	stts := be32(be32(nil, 0), uint32(len(runs)))
	for _, r := range runs {
		stts = be32(be32(stts, r[0]), r[1])
	}
	ones := make([]uint32, len(w.vt.sizes))
	for i := range ones {
		ones[i] = 1
	}
	stsz := be32(be32(be32(nil, 0), 0), uint32(len(w.vt.sizes))) // sizes vary
	for _, s := range w.vt.sizes {
		stsz = be32(stsz, s)
	}
	return atom("stbl", stsd, atom("stts", stts), stsc(ones), atom("stsz", stsz), chunkOffsets(w.vt.offsets))
}

func (w *Writer) audioTables() []byte {
	// QuickTime sound description, version 0 (what QuickTime writes for
	// 'sowt'): a sample is one sample frame of all channels.
	d := make([]byte, 6) // reserved
	d = be16(d, 1)       // data reference index
	d = be16(d, 0)       // version
	d = be16(d, 0)       // revision level
	d = be32(d, 0)       // vendor
	d = be16(d, uint16(w.audio.Channels))
	d = be16(d, 16) // sample size, bits
	d = be16(d, 0)  // compression ID
	d = be16(d, 0)  // packet size
	d = be32(d, uint32(w.audio.SampleRate)<<16)
	stsd := atom("stsd", be32(nil, 0), be32(nil, 1), atom("sowt", d))
	stts := be32(be32(nil, 0), 0)
	if w.at.samples > 0 {
		stts = be32(be32(be32(be32(nil, 0), 1), uint32(w.at.samples)), 1)
	}
	stsz := be32(be32(be32(nil, 0), uint32(2*w.audio.Channels)), uint32(w.at.samples)) // every sample the same size
	return atom("stbl", stsd, atom("stts", stts), stsc(w.at.counts), atom("stsz", stsz), chunkOffsets(w.at.offsets))
}

// stsc is the sample-to-chunk table: an entry wherever the number of
// samples a chunk changes.
func stsc(counts []uint32) []byte {
	var b []byte
	var n uint32
	for i, c := range counts {
		if i > 0 && counts[i-1] == c {
			continue
		}
		b = be32(be32(be32(b, uint32(i+1)), c), 1) // first chunk, samples per chunk, description
		n++
	}
	return atom("stsc", be32(nil, 0), be32(nil, n), b)
}

// chunkOffsets is 'stco', or 'co64' when an offset passes 4 GB.
func chunkOffsets(offs []int64) []byte {
	long := len(offs) > 0 && offs[len(offs)-1] > math.MaxUint32
	b := be32(be32(nil, 0), uint32(len(offs)))
	for _, o := range offs {
		if long {
			b = be64(b, uint64(o))
		} else {
			b = be32(b, uint32(o))
		}
	}
	if long {
		return atom("co64", b)
	}
	return atom("stco", b)
}

// atom is a box: its 32-bit size, its type and the parts of its body.
func atom(typ string, body ...[]byte) []byte {
	n := 8
	for _, p := range body {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = be32(b, uint32(n))
	b = append(b, typ...)
	for _, p := range body {
		b = append(b, p...)
	}
	return b
}

// matrix appends the identity transformation matrix.
func matrix(b []byte) []byte {
	for _, v := range []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		b = be32(b, v)
	}
	return b
}

func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
