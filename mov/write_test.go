package mov

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"attune.dev/attune/mkv"
)

// testFrames are n distinct JPEG pictures of w×h: a colour and a bar that
// move with the frame number.
func testFrames(t *testing.T, n, w, h int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				c := color.RGBA{uint8(40 + 15*i), uint8(x * 255 / w), uint8(y * 255 / h), 255}
				if x/8 == i%(w/8) {
					c = color.RGBA{255, 255, 255, 255}
				}
				img.Set(x, y, c)
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	return out
}

// tone is n sample frames of a 440 Hz sine as interleaved signed 16-bit
// little-endian PCM, each channel a little quieter than the one before.
func tone(rate, channels, n int) []byte {
	b := make([]byte, 0, n*2*channels)
	for i := range n {
		s := math.Sin(2 * math.Pi * 440 * float64(i) / float64(rate))
		for c := range channels {
			b = binary.LittleEndian.AppendUint16(b, uint16(int16(s*float64(12000-2000*c))))
		}
	}
	return b
}

type clip struct {
	video  mkv.Track
	audio  *mkv.Track
	frames [][]byte
	pcm    []byte
	pkts   []mkv.Packet
}

// newClip is frames at fps with, if rate > 0, the tone starting delay after
// the first frame, cut into one packet a frame and written after it.
func newClip(t *testing.T, n, w, h int, fps float64, rate, channels int, delay time.Duration) clip {
	c := clip{video: mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: w, Height: h, FPS: fps}, frames: testFrames(t, n, w, h)}
	per := 0
	if rate > 0 {
		c.audio = &mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: rate, Channels: channels, BitDepth: 16}
		per = int(float64(rate) / fps)
		c.pcm = tone(rate, channels, n*per)
	}
	fb := 2 * channels
	for i, f := range c.frames {
		c.pkts = append(c.pkts, mkv.Packet{Kind: mkv.Video, PTS: time.Duration(float64(i) / fps * float64(time.Second)), Data: f, Key: true})
		if rate > 0 {
			c.pkts = append(c.pkts, mkv.Packet{Kind: mkv.Audio, PTS: delay + time.Duration(i*per)*time.Second/time.Duration(rate),
				Data: c.pcm[i*per*fb : (i+1)*per*fb], Key: true})
		}
	}
	return c
}

func (c clip) write(t *testing.T, out io.WriteSeeker) {
	t.Helper()
	w, err := NewWriter(out, c.video, c.audio)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.pkts {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func (c clip) file(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.mov")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	c.write(t, f)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on the PATH: cannot check that it reads the movie", tool)
		}
	}
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	RFrameRate   string `json:"r_frame_rate"`
	AvgFrameRate string `json:"avg_frame_rate"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	DurationTS   int64  `json:"duration_ts"`
	StartTime    string `json:"start_time"`
	Packets      string `json:"nb_read_packets"`
}

func probe(t *testing.T, path string) map[string]probeStream {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p struct{ Streams []probeStream }
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	m := map[string]probeStream{}
	for _, s := range p.Streams {
		m[s.CodecType] = s
	}
	if len(m) != len(p.Streams) {
		t.Errorf("ffprobe: streams %+v", p.Streams)
	}
	return m
}

// copiedFrames are the video packets ffmpeg copies out of path, one JPEG
// file each.
func copiedFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-c", "copy", "-f", "image2",
		filepath.Join(dir, "frame%03d.jpg")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg copying the frames: %v\n%s", err, out)
	}
	var frames [][]byte
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("frame%03d.jpg", i)))
		if errors.Is(err, os.ErrNotExist) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
}

func sameFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("ffmpeg copied %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d as ffmpeg copies it (%d bytes) is not the JPEG written (%d bytes)", i, len(got[i]), len(want[i]))
		}
	}
}

// TestFFmpegReadsMovie writes 12 frames at 30 fps with a 48 kHz stereo
// 440 Hz tone that starts 10 ms after the first frame: ffprobe sees MJPEG
// of the size and rate written with exactly 12 packets and PCM of the rate,
// channels and sample count written, 10 ms after the video; ffmpeg copies
// out the JPEGs byte for byte and decodes the sound sample for sample.
func TestFFmpegReadsMovie(t *testing.T) {
	needFFmpeg(t)
	const n, delay = 12, 10 * time.Millisecond
	c := newClip(t, n, 160, 120, 30, 48000, 2, delay)
	path := c.file(t)

	s := probe(t, path)
	v, a := s["video"], s["audio"]
	if v.CodecName != "mjpeg" || v.Packets != strconv.Itoa(n) || v.Width != 160 || v.Height != 120 || v.RFrameRate != "30/1" || v.AvgFrameRate != "30/1" {
		t.Errorf("video as ffprobe sees it: %+v; want mjpeg, %d packets, 160×120, 30/1 fps", v, n)
	}
	samples := int64(len(c.pcm) / 4)
	if a.CodecName != "pcm_s16le" || a.SampleRate != "48000" || a.Channels != 2 || a.DurationTS != samples {
		t.Errorf("audio as ffprobe sees it: %+v; want pcm_s16le, 48000 Hz, 2 channels, %d samples", a, samples)
	}
	vs, _ := strconv.ParseFloat(v.StartTime, 64)
	as, _ := strconv.ParseFloat(a.StartTime, 64)
	if math.Abs(as-vs-delay.Seconds()) > 1.0/movieScale {
		t.Errorf("the sound starts %v s after the pictures, want %v", as-vs, delay.Seconds())
	}

	sameFrames(t, copiedFrames(t, path), c.frames)

	pcm, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:a", "-c:a", "pcm_s16le", "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decoding the sound: %v", err)
	}
	if !bytes.Equal(pcm, c.pcm) {
		t.Errorf("ffmpeg decodes %d bytes of sound, not the %d bytes written", len(pcm), len(c.pcm))
	}
}

// TestFFmpegReadsVideoOnly writes 7 frames at 25 fps and no sound.
func TestFFmpegReadsVideoOnly(t *testing.T) {
	needFFmpeg(t)
	c := newClip(t, 7, 96, 64, 25, 0, 0, 0)
	path := c.file(t)
	s := probe(t, path)
	if v := s["video"]; len(s) != 1 || v.CodecName != "mjpeg" || v.Packets != "7" || v.Width != 96 || v.Height != 64 || v.AvgFrameRate != "25/1" {
		t.Errorf("ffprobe sees %+v; want one mjpeg stream of 7 packets, 96×64, 25 fps", s)
	}
	sameFrames(t, copiedFrames(t, path), c.frames)
}

// box is one atom of a parsed movie.
type box struct {
	typ  string
	off  int64 // of its header
	body []byte
}

// boxes parses b (at offset off in the file) as a run of atoms; an atom
// that does not fit fails the test.
func boxes(t *testing.T, b []byte, off int64) []box {
	t.Helper()
	var out []box
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d stray bytes at %d", len(b), off)
		}
		size, hdr := int64(binary.BigEndian.Uint32(b)), int64(8)
		if size == 1 {
			size, hdr = int64(binary.BigEndian.Uint64(b[8:])), 16
		}
		if size < hdr || size > int64(len(b)) {
			t.Fatalf("atom %q at %d: size %d, %d bytes left", b[4:8], off, size, len(b))
		}
		out = append(out, box{string(b[4:8]), off, b[hdr:size]})
		b, off = b[size:], off+size
	}
	return out
}

// child is the one atom of type typ under a container's body.
func child(t *testing.T, body []byte, path ...string) []byte {
	t.Helper()
	for _, typ := range path {
		var found []byte
		for _, c := range boxes(t, body, 0) {
			if c.typ == typ {
				if found != nil {
					t.Fatalf("two %q atoms", typ)
				}
				found = c.body
			}
		}
		if found == nil {
			t.Fatalf("no %q atom", typ)
		}
		body = found
	}
	return body
}

// table is the entries of a sample table atom (after version, flags and
// count) of fields words of width bytes each, the words in a row.
func table(body []byte, width, fields int) []uint64 {
	n := int(binary.BigEndian.Uint32(body[4:]))
	var out []uint64
	rest := body[8:]
	for range n * fields {
		if width == 8 {
			out = append(out, binary.BigEndian.Uint64(rest))
		} else {
			out = append(out, uint64(binary.BigEndian.Uint32(rest)))
		}
		rest = rest[width:]
	}
	return out
}

// memFile is an in-memory io.WriteSeeker.
type memFile struct {
	b   []byte
	pos int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.pos + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[m.pos:], p)
	m.pos += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += m.pos
	case io.SeekEnd:
		off += int64(len(m.b))
	}
	m.pos = off
	return off, nil
}

// TestBoxes checks the atom tree without ffmpeg: the brand, the 64-bit
// mdat size, the moov after it, each track's sample description, the
// frame durations from the PTS (a frame missing at 3/30 s doubles the one
// before it; the last lasts 1/30 s), the sound delayed by an edit, and the
// chunk offsets pointing at the packets' bytes.
func TestBoxes(t *testing.T) {
	c := newClip(t, 6, 64, 48, 30, 16000, 1, 20*time.Millisecond)
	// Drop frame 3 and its sound: the frame before it lasts two frames.
	c.pkts = append(c.pkts[:6:6], c.pkts[8:]...)
	var f memFile
	c.write(t, &f)

	top := boxes(t, f.b, 0)
	if len(top) != 3 || top[0].typ != "ftyp" || top[1].typ != "mdat" || top[2].typ != "moov" {
		t.Fatalf("top-level atoms %v, want ftyp mdat moov", top)
	}
	if string(top[0].body[:4]) != "qt  " {
		t.Errorf("major brand %q, want qt", top[0].body[:4])
	}
	if binary.BigEndian.Uint32(f.b[top[1].off:]) != 1 {
		t.Error("the mdat has no 64-bit size")
	}
	traks := boxes(t, top[2].body, 0)
	if len(traks) != 3 || traks[0].typ != "mvhd" || traks[1].typ != "trak" || traks[2].typ != "trak" {
		t.Fatalf("moov holds %v", traks)
	}
	vt, at := traks[1].body, traks[2].body
	stbl := func(trak []byte) []byte { return child(t, trak, "mdia", "minf", "stbl") }
	if d := child(t, stbl(vt), "stsd"); string(d[12:16]) != "jpeg" || binary.BigEndian.Uint16(d[16+24:]) != 64 || binary.BigEndian.Uint16(d[16+26:]) != 48 || binary.BigEndian.Uint16(d[16+74:]) != 24 {
		t.Errorf("video sample description %x", d)
	}
	if d := child(t, stbl(at), "stsd"); string(d[12:16]) != "sowt" || binary.BigEndian.Uint16(d[16+16:]) != 1 || binary.BigEndian.Uint16(d[16+18:]) != 16 || binary.BigEndian.Uint32(d[16+24:]) != 16000<<16 {
		t.Errorf("sound sample description %x", d)
	}
	if got := fmt.Sprint(table(child(t, stbl(vt), "stts"), 4, 2)); got != "[2 3000 1 6000 2 3000]" {
		t.Errorf("video stts (count, duration) %s, want [2 3000 1 6000 2 3000]", got)
	}
	if got := fmt.Sprint(table(child(t, stbl(at), "stts"), 4, 2)); got != "[2665 1]" {
		t.Errorf("sound stts %s, want 2665 samples of 1", got)
	}
	// The video starts at once; the sound after an empty edit of 20 ms.
	if got := fmt.Sprint(table(child(t, vt, "edts", "elst"), 4, 3)); got != "[18000 0 65536]" {
		t.Errorf("video edit list %s", got)
	}
	if got := fmt.Sprint(table(child(t, at, "edts", "elst"), 4, 3)); got != fmt.Sprintf("[1800 %d 65536 14991 0 65536]", uint32(math.MaxUint32)) {
		t.Errorf("sound edit list %s, want an empty edit of 1800 then the media", got)
	}
	// Each chunk offset is where the packet's bytes are.
	vi, ai := 0, 0
	voff, aoff := table(child(t, stbl(vt), "stco"), 4, 1), table(child(t, stbl(at), "stco"), 4, 1)
	for _, p := range c.pkts {
		var off uint64
		if p.Kind == mkv.Video {
			off, vi = voff[vi], vi+1
		} else {
			off, ai = aoff[ai], ai+1
		}
		if !bytes.Equal(f.b[off:off+uint64(len(p.Data))], p.Data) {
			t.Errorf("a %s chunk offset does not point at its packet", p.Kind)
		}
	}
	if vi != len(voff) || ai != len(aoff) {
		t.Errorf("%d video and %d sound chunks, want %d and %d", len(voff), len(aoff), vi, ai)
	}
}

// sparseFile is an io.WriteSeeker that keeps only the writes of up to
// 1 MB, so a test can write a movie past 4 GB without the bytes.
type sparseFile struct {
	pos, size int64
	small     map[int64][]byte
}

func (s *sparseFile) Write(p []byte) (int, error) {
	if len(p) <= 1<<20 {
		s.small[s.pos] = bytes.Clone(p)
	}
	s.pos += int64(len(p))
	s.size = max(s.size, s.pos)
	return len(p), nil
}

func (s *sparseFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	}
	s.pos = off
	return off, nil
}

// TestOver4GB writes 66 frames of 64 MB with sound between them: the mdat's
// 64-bit size covers them all and the chunk offsets past 4 GB are whole, in
// co64 tables.
func TestOver4GB(t *testing.T) {
	big := make([]byte, 64<<20)
	copy(big, testFrames(t, 1, 16, 16)[0])
	video := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 16, Height: 16, FPS: 30}
	audio := &mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 1}
	s := &sparseFile{small: map[int64][]byte{}}
	w, err := NewWriter(s, video, audio)
	if err != nil {
		t.Fatal(err)
	}
	mdatPos := s.pos - 16
	var voffs, aoffs []uint64
	snd := tone(8000, 1, 266)
	for i := range 66 {
		voffs = append(voffs, uint64(s.pos))
		if err := w.WritePacket(mkv.Packet{Kind: mkv.Video, PTS: time.Duration(i) * time.Second / 30, Data: big}); err != nil {
			t.Fatal(err)
		}
		aoffs = append(aoffs, uint64(s.pos))
		if err := w.WritePacket(mkv.Packet{Kind: mkv.Audio, PTS: time.Duration(i) * time.Second / 30, Data: snd}); err != nil {
			t.Fatal(err)
		}
	}
	moovPos := s.pos
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if s.pos != s.size {
		t.Errorf("Close left the file at %d, its end is %d", s.pos, s.size)
	}
	if got := binary.BigEndian.Uint64(s.small[mdatPos+8]); int64(got) != moovPos-mdatPos || moovPos-mdatPos <= math.MaxUint32 {
		t.Errorf("mdat size %d, want %d (over 4 GB)", got, moovPos-mdatPos)
	}
	moov := boxes(t, s.small[moovPos], moovPos)
	if len(moov) != 1 || moov[0].typ != "moov" {
		t.Fatalf("after the mdat: %v", moov)
	}
	traks := boxes(t, moov[0].body, 0)
	for i, want := range [][]uint64{voffs, aoffs} {
		got := table(child(t, traks[1+i].body, "mdia", "minf", "stbl", "co64"), 8, 1)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("track %d co64 %v, want %v", i+1, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	var f memFile
	video := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 16, Height: 16}
	for _, tc := range []struct {
		video mkv.Track
		audio *mkv.Track
	}{
		{mkv.Track{Kind: mkv.Video, Codec: "V_MPEG4/ISO/AVC", Width: 16, Height: 16}, nil},
		{mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG}, nil},
		{video, &mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 96000, Channels: 2}},
		{video, &mkv.Track{Kind: mkv.Audio, Codec: "A_AAC", SampleRate: 48000, Channels: 2}},
	} {
		if _, err := NewWriter(&f, tc.video, tc.audio); err == nil {
			t.Errorf("NewWriter(%+v, %+v) wrote a movie", tc.video, tc.audio)
		}
	}
	w, err := NewWriter(&f, video, &mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(mkv.Packet{Kind: mkv.Audio, Data: make([]byte, 6)}); err == nil {
		t.Error("an audio packet of a sample frame and a half was written")
	}
}
