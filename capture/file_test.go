package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// ftNeedFFmpeg skips in -short mode and fails if ffmpeg is missing.
func ftNeedFFmpeg(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs ffmpeg; skipped in -short mode")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Fatal("ffmpeg is required for this test (apt-get install ffmpeg)")
	}
}

// ftRunFFmpeg runs ffmpeg with args and returns the path of out in dir.
func ftRunFFmpeg(tb testing.TB, dir, out string, args ...string) string {
	tb.Helper()
	path := filepath.Join(dir, out)
	args = append(append([]string{"-v", "error", "-y"}, args...), path)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return path
}

// ftTestArgs make the 2 s, 320x240, 30 fps MJPEG + 48 kHz mono PCM sample.
var ftTestArgs = []string{
	"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
	"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
	"-t", "2", "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le", "-ac", "1",
}

// ftTestInput writes the sample to dir/out. If out starts with "pipe.",
// ffmpeg writes to a pipe, as a live recorder would: it cannot seek back, so
// sizes stay unknown (Matroska Segment and Clusters, AVI RIFF and movi) and
// there are no indexes.
func ftTestInput(tb testing.TB, dir, out string) string {
	tb.Helper()
	if !strings.HasPrefix(out, "pipe.") {
		return ftRunFFmpeg(tb, dir, out, ftTestArgs...)
	}
	path := filepath.Join(dir, out)
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	format := map[string]string{".mkv": "matroska", ".avi": "avi"}[filepath.Ext(out)]
	cmd := exec.Command("ffmpeg", append(append([]string{"-v", "error"}, ftTestArgs...), "-f", format, "pipe:1")...)
	var stderr bytes.Buffer
	cmd.Stdout = struct{ io.Writer }{f} // not an *os.File: exec makes a pipe
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("ffmpeg to a pipe: %v\n%s", err, stderr.Bytes())
	}
	return path
}

// ftReadAll reads src to the end and returns its packets.
func ftReadAll(tb testing.TB, src Source) []Packet {
	tb.Helper()
	var ps []Packet
	for {
		p, err := src.Next(context.Background())
		if err == io.EOF {
			return ps
		}
		if err != nil {
			tb.Fatalf("Next after %d packets: %v", len(ps), err)
		}
		ps = append(ps, p)
	}
}

func ftIsJPEG(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[len(b)-2] == 0xFF && b[len(b)-1] == 0xD9
}

func TestFileReplay(t *testing.T) {
	ftNeedFFmpeg(t)
	dir := t.TempDir()
	for _, name := range []string{"out.mkv", "out.avi", "pipe.mkv", "pipe.avi"} {
		t.Run(name, func(t *testing.T) {
			path := ftTestInput(t, dir, name)
			before := Now()
			src, err := OpenFile(path, Fast, true)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()

			trk := src.Tracks()
			if len(trk) != 2 {
				t.Fatalf("tracks = %+v, want video and audio", trk)
			}
			v, a := trk[0], trk[1]
			if v.Kind != Video || v.Codec != CodecMJPEG || v.Width != 320 || v.Height != 240 {
				t.Errorf("video track = %+v", v)
			}
			if math.Abs(v.FPS-30) > 0.01 {
				t.Errorf("video FPS = %v, want 30", v.FPS)
			}
			if a.Kind != Audio || a.Codec != CodecPCMS16 || a.SampleRate != 48000 || a.Channels != 1 || a.BitDepth != 16 {
				t.Errorf("audio track = %+v", a)
			}

			ps := ftReadAll(t, src)
			if _, err := src.Next(context.Background()); err != io.EOF {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
			var video []Packet
			audioBytes := 0
			var lastAudio time.Duration = -1
			for _, p := range ps {
				if !p.Key {
					t.Errorf("packet at %v: Key = false", p.PTS)
				}
				if p.PTS < before {
					t.Errorf("%v packet PTS %v precedes the first Next (%v)", p.Kind, p.PTS, before)
				}
				switch p.Kind {
				case Video:
					video = append(video, p)
					if !ftIsJPEG(p.Data) {
						t.Errorf("video packet %d is not a JPEG: % x ... % x", len(video)-1, p.Data[:min(4, len(p.Data))], p.Data[max(0, len(p.Data)-2):])
					}
				case Audio:
					audioBytes += len(p.Data)
					if p.PTS < lastAudio {
						t.Errorf("audio PTS goes back: %v after %v", p.PTS, lastAudio)
					}
					lastAudio = p.PTS
				default:
					t.Errorf("packet of kind %v", p.Kind)
				}
			}
			if n := len(video); n < 59 || n > 61 {
				t.Errorf("%d video packets, want 60±1", n)
			}
			for i := 1; i < len(video); i++ {
				d := video[i].PTS - video[i-1].PTS
				if d < 31500*time.Microsecond || d > 35200*time.Microsecond {
					t.Errorf("video packets %d-%d are %v apart, want ~33.3ms", i-1, i, d)
				}
			}
			want := 2 * 48000 * 2
			if math.Abs(float64(audioBytes-want)) > 0.02*float64(want) {
				t.Errorf("%d audio bytes, want %d±2%%", audioBytes, want)
			}
			// The last audio packet starts about 2 s after the first video one.
			if span := lastAudio - video[0].PTS; span < 1900*time.Millisecond || span > 2*time.Second {
				t.Errorf("audio ends %v after the first frame", span)
			}
		})
	}
}

func TestFileNoAudio(t *testing.T) {
	ftNeedFFmpeg(t)
	dir := t.TempDir()
	for _, ext := range []string{"mkv", "avi"} {
		path := ftTestInput(t, dir, "out."+ext)
		src, err := OpenFile(path, Fast, false)
		if err != nil {
			t.Fatal(err)
		}
		if trk := src.Tracks(); len(trk) != 1 || trk[0].Kind != Video {
			t.Errorf("%s: tracks = %+v, want video only", ext, trk)
		}
		ps := ftReadAll(t, src)
		for _, p := range ps {
			if p.Kind != Video {
				t.Fatalf("%s: got a %v packet with audio off", ext, p.Kind)
			}
		}
		if len(ps) < 59 || len(ps) > 61 {
			t.Errorf("%s: %d packets, want 60±1", ext, len(ps))
		}
		src.Close()
	}
}

// TestFileRealtime checks pacing: no packet is delivered before its PTS.
func TestFileRealtime(t *testing.T) {
	ftNeedFFmpeg(t)
	path := ftTestInput(t, t.TempDir(), "out.mkv")
	src, err := OpenFile(path, Realtime, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for ; ; n++ {
		p, err := src.Next(context.Background())
		now := Now()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.PTS > now {
			t.Fatalf("packet %d (%v) with PTS %v delivered early, at %v", n, p.Kind, p.PTS, now)
		}
	}
	if n < 100 {
		t.Errorf("only %d packets", n)
	}
}

func TestFileUnsupported(t *testing.T) {
	ftNeedFFmpeg(t)
	dir := t.TempDir()
	h264 := "libx264"
	if b, _ := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); !bytes.Contains(b, []byte(" libx264 ")) {
		h264 = "mpeg4"
	}
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "0.5"}
	args := func(extra ...string) []string { return append(append([]string{}, src...), extra...) }
	tests := []struct {
		name      string
		args      []string
		withAudio bool
		want      []string // substrings of the error; nil: opens fine
	}{
		{"h264.mkv", args("-c:v", h264, "-c:a", "pcm_s16le"), true,
			[]string{"open file: ", "video codec V_MPEG4/ISO/", "is not supported (supported: V_MJPEG)", "convert with: ffmpeg -i "}},
		{"h264.avi", args("-c:v", h264, "-c:a", "pcm_s16le"), true,
			[]string{"open file: ", "video codec ", "is not supported (supported: MJPG)", "convert with: ffmpeg -i "}},
		{"float.mkv", args("-c:v", "mjpeg", "-c:a", "pcm_f32le"), true,
			[]string{"audio codec A_PCM/FLOAT/IEEE is not supported", "convert with: "}},
		{"s24.mkv", args("-c:v", "mjpeg", "-c:a", "pcm_s24le"), true,
			[]string{"audio codec A_PCM/INT/LIT with 24-bit samples is not supported"}},
		{"u8.avi", args("-c:v", "mjpeg", "-c:a", "pcm_u8"), true,
			[]string{"audio codec PCM (format 0x0001) with 8-bit samples is not supported"}},
		{"s24-noaudio.mkv", args("-c:v", "mjpeg", "-c:a", "pcm_s24le"), false, nil},
		{"video-only.mkv", args("-c:v", "mjpeg", "-an"), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ftRunFFmpeg(t, dir, tt.name, tt.args...)
			s, err := OpenFile(path, Fast, tt.withAudio)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if trk := s.Tracks(); len(trk) != 1 || trk[0].Kind != Video {
					t.Errorf("tracks = %+v, want video only", trk)
				}
				if len(ftReadAll(t, s)) == 0 {
					t.Error("no packets")
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("OpenFile succeeded")
			}
			t.Log(err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFileTruncated(t *testing.T) {
	ftNeedFFmpeg(t)
	dir := t.TempDir()
	for _, name := range []string{"out.mkv", "out.avi", "pipe.mkv", "pipe.avi"} {
		t.Run(name, func(t *testing.T) {
			ext := filepath.Ext(name)
			full, err := os.ReadFile(ftTestInput(t, dir, name))
			if err != nil {
				t.Fatal(err)
			}
			for _, cut := range []int{len(full) / 2, len(full)/2 + 1, len(full) - 1} {
				path := filepath.Join(dir, "cut"+ext)
				if err := os.WriteFile(path, full[:cut], 0o644); err != nil {
					t.Fatal(err)
				}
				src, err := OpenFile(path, Fast, true)
				if err != nil {
					t.Fatal(err)
				}
				ps := ftReadAll(t, src) // fails on any error but io.EOF
				if _, err := src.Next(context.Background()); err != io.EOF {
					t.Errorf("cut at %d: Next after the end = %v, want io.EOF", cut, err)
				}
				src.Close()
				video := 0
				for _, p := range ps {
					if p.Kind == Video {
						video++
						if !ftIsJPEG(p.Data) {
							t.Errorf("cut at %d: video packet %d is incomplete", cut, video)
						}
					}
				}
				if cut == len(full)/2 && (video < 20 || video > 40) {
					t.Errorf("cut at half: %d video packets, want about 30", video)
				}
				if cut == len(full)-1 && video < 59 {
					t.Errorf("cut at the last byte: %d video packets, want 60", video)
				}
			}
		})
	}
}

// TestFileTinySamples replays the committed fuzz seeds, written by ffmpeg.
func TestFileTinySamples(t *testing.T) {
	for _, name := range []string{"tiny.mkv", "tiny.avi"} {
		src, err := OpenFile(filepath.Join("testdata", name), Fast, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []Track{
			{Kind: Video, Codec: CodecMJPEG, Width: 16, Height: 16, FPS: 30},
			{Kind: Audio, Codec: CodecPCMS16, SampleRate: 1000, Channels: 1, BitDepth: 16},
		}
		if got := src.Tracks(); !slices.Equal(got, want) {
			t.Errorf("%s: tracks = %+v, want %+v", name, got, want)
		}
		ps := ftReadAll(t, src)
		src.Close()
		var kinds []Kind
		for _, p := range ps {
			kinds = append(kinds, p.Kind)
			if p.Kind == Video && !ftIsJPEG(p.Data) || p.Kind == Audio && len(p.Data) != 134 {
				t.Errorf("%s: %v packet of %d bytes", name, p.Kind, len(p.Data))
			}
		}
		if !slices.Equal(kinds, []Kind{Video, Audio, Video}) {
			t.Errorf("%s: packets %v, want video, audio, video", name, kinds)
		}
		if len(ps) == 3 {
			if d := ps[2].PTS - ps[0].PTS; d < 33*time.Millisecond || d > 34*time.Millisecond {
				t.Errorf("%s: frames %v apart", name, d)
			}
		}
	}
}

// --- Synthetic Matroska, for what ffmpeg does not write. ---

// ftEbmlID encodes an element ID (which includes its length marker).
func ftEbmlID(id uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	i := 0
	for i < 3 && b[i] == 0 {
		i++
	}
	return b[i:]
}

// ftEl encodes an element with an 8-byte size field.
func ftEl(id uint32, body ...[]byte) []byte {
	data := bytes.Join(body, nil)
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], uint64(len(data)))
	size[0] = 0x01
	return append(append(ftEbmlID(id), size[:]...), data...)
}

// ftElUnknown encodes a master element of unknown size.
func ftElUnknown(id uint32, body ...[]byte) []byte {
	return append(append(ftEbmlID(id), 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), bytes.Join(body, nil)...)
}

func ftElUint(id uint32, v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return ftEl(id, b[:])
}

func ftElFloat(id uint32, v float64) []byte { return ftElUint(id, math.Float64bits(v)) }

func ftElStr(id uint32, s string) []byte { return ftEl(id, []byte(s)) }

// ftBlock encodes a SimpleBlock or Block body.
func ftBlock(track byte, rel int16, flags byte, data []byte) []byte {
	return append([]byte{0x80 | track, byte(uint16(rel) >> 8), byte(rel), flags}, data...)
}

// ftFakeJPEG is enough of a JPEG for the readers, which do not decode.
func ftFakeJPEG(i int) []byte { return []byte{0xFF, 0xD8, byte(i), byte(i >> 8), 0xFF, 0xD9} }

// ftMKVHead is an EBML header and the start of an unknown-size Segment with
// Info (TimecodeScale 1 ms) and Tracks: 1 = MJPEG 64x48 at 25 fps, 2 = PCM
// 8 kHz mono.
func ftMKVHead(scale uint64) []byte {
	return bytes.Join([][]byte{
		ftEl(eidEBML, ftElStr(eidDocType, "matroska")),
		ftElUnknown(eidSegment),
		ftEl(eidSeekHead, bytes.Repeat([]byte{0}, 20)),
		ftEl(eidVoid, make([]byte, 100)),
		ftEl(eidInfo, ftElUint(eidTimecodeScale, scale)),
		ftEl(eidTracks,
			ftEl(eidTrackEntry, ftElUint(eidTrackNumber, 1), ftElUint(eidTrackType, mkvrTypeVideo), ftElStr(eidCodecID, CodecMJPEG),
				ftElUint(eidDefaultDuration, 40e6), ftEl(eidVideo, ftElUint(eidPixelWidth, 64), ftElUint(eidPixelHeight, 48))),
			ftEl(eidTrackEntry, ftElUint(eidTrackNumber, 2), ftElUint(eidTrackType, mkvrTypeAudio), ftElStr(eidCodecID, CodecPCMS16),
				ftEl(eidAudio, ftElFloat(eidSamplingFreq, 8000), ftElUint(eidChannels, 1), ftElUint(eidBitDepth, 16))),
			ftEl(eidTrackEntry, ftElUint(eidTrackNumber, 3), ftElUint(eidTrackType, 0x11), ftElStr(eidCodecID, "S_TEXT/UTF8")),
		),
	}, nil)
}

// ftSynthMKV has known- and unknown-size clusters, SimpleBlocks, a
// BlockGroup, a subtitle block, Cues in between and a 10 µs timecode scale.
func ftSynthMKV() []byte {
	return bytes.Join([][]byte{
		ftMKVHead(10000),
		ftEl(eidCluster, ftElUint(eidTimecode, 0),
			ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0))),
			ftEl(eidSimpleBlock, ftBlock(2, 0, 0x80, make([]byte, 320))),
			ftEl(eidVoid, make([]byte, 7)),
			ftEl(eidSimpleBlock, ftBlock(3, 100, 0x80, []byte("hello"))),
			ftEl(eidBlockGroup, ftElUint(0x9B, 4000), ftEl(eidBlock, ftBlock(1, 4000, 0, ftFakeJPEG(1))), ftElUint(0xFB, 0)),
		),
		ftEl(eidCues, make([]byte, 50)),
		ftElUnknown(eidCluster, ftElUint(eidTimecode, 8000),
			ftEl(eidSimpleBlock, ftBlock(2, -4000, 0x80, make([]byte, 320))),
			ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(2))),
		),
		ftElUnknown(eidCluster, ftElUint(eidTimecode, 12000),
			ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(3))),
		),
		ftEl(eidTags, make([]byte, 10)),
	}, nil)
}

// ftDemux reads all packets of d.
func ftDemux(d replayDemuxer) ([]Packet, error) {
	var ps []Packet
	for {
		p, err := d.next()
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
}

type ftWantPacket struct {
	kind Kind
	pts  time.Duration
	size int
}

func ftCheckPackets(t *testing.T, ps []Packet, want []ftWantPacket) {
	t.Helper()
	if len(ps) != len(want) {
		t.Errorf("%d packets, want %d", len(ps), len(want))
	}
	for i := range min(len(ps), len(want)) {
		p, w := ps[i], want[i]
		if p.Kind != w.kind || p.PTS != w.pts || len(p.Data) != w.size || !p.Key {
			t.Errorf("packet %d = %v at %v, %d bytes, key %v; want %v at %v, %d bytes", i, p.Kind, p.PTS, len(p.Data), p.Key, w.kind, w.pts, w.size)
		}
	}
}

func TestMatroskaSynthetic(t *testing.T) {
	file := ftSynthMKV()
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file)
		if !seek {
			r = struct{ io.Reader }{r} // hide Seek: skip by reading
		}
		d, err := newMatroskaReader(r, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []Track{
			{Kind: Video, Codec: CodecMJPEG, Width: 64, Height: 48, FPS: 25},
			{Kind: Audio, Codec: CodecPCMS16, SampleRate: 8000, Channels: 1, BitDepth: 16},
		}
		if got := d.tracks(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("tracks = %+v, want %+v", got, want)
		}
		ps, err := ftDemux(d)
		if err != io.EOF {
			t.Fatalf("after %d packets: %v", len(ps), err)
		}
		ftCheckPackets(t, ps, []ftWantPacket{
			{Video, 0, 6},
			{Audio, 0, 320},
			{Video, 40 * time.Millisecond, 6},
			{Audio, 40 * time.Millisecond, 320},
			{Video, 80 * time.Millisecond, 6},
			{Video, 120 * time.Millisecond, 6},
		})
		v := 0
		for _, p := range ps {
			if p.Kind == Video {
				if !bytes.Equal(p.Data, ftFakeJPEG(v)) {
					t.Errorf("frame %d data = % x", v, p.Data)
				}
				v++
			}
		}
	}
}

func TestMatroskaErrors(t *testing.T) {
	cluster := func(body ...[]byte) []byte {
		return append(ftMKVHead(1e6), ftEl(eidCluster, append([][]byte{ftElUint(eidTimecode, 0)}, body...)...)...)
	}
	big := ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0)))
	binary.BigEndian.PutUint64(big[1:], 1<<50) // size beyond the cluster
	big[1] = 0x01
	tests := []struct {
		name string
		file []byte
		open bool   // error from newMatroskaReader, else from next
		want string // "" for io.EOF
	}{
		{"laced", cluster(ftEl(eidSimpleBlock, ftBlock(1, 0, 0x82, ftFakeJPEG(0)))), false, "read matroska: video block at offset "},
		{"laced audio", cluster(ftEl(eidSimpleBlock, ftBlock(2, 0, 0x86, ftFakeJPEG(0)))), false, "uses lacing, which is not supported"},
		{"beyond parent", cluster(big), false, "read matroska: element 0xA3 at offset "},
		{"huge frame", append(ftMKVHead(1e6), ftElUnknown(eidCluster, big)...), false, "exceeds the 67108864-byte limit"},
		{"bad id", cluster([]byte{0x00, 0x00, 0x00}), false, "read matroska: invalid element id at offset"},
		{"no ebml", ftEl(eidSegment), true, "read matroska: not a matroska file"},
		{"doctype", ftEl(eidEBML, ftElStr(eidDocType, "avi")), true, `EBML document type "avi" is not supported`},
		{"no tracks", append(ftEl(eidEBML), ftElUnknown(eidSegment, ftElUnknown(eidCluster))...), true, "read matroska: no tracks before the first cluster"},
		{"cut in header", ftMKVHead(1e6)[:60], true, "read matroska: file ends before its tracks"},
		{"scale 0", append(ftEl(eidEBML), ftElUnknown(eidSegment, ftEl(eidInfo, ftElUint(eidTimecodeScale, 0)))...), true, "timecode scale 0 is out of range"},
		{"cut in block", cluster(ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0))))[:len(cluster())+8], false, ""},
		{"laced foreign track", cluster(ftEl(eidSimpleBlock, ftBlock(3, 0, 0x82, ftFakeJPEG(0)))), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := newMatroskaReader(bytes.NewReader(tt.file), true)
			if !tt.open && err == nil {
				_, err = ftDemux(d)
			}
			if tt.want == "" {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				return
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// ftSparse is a virtual io.ReadSeeker: real bytes around long runs of zeros.
type ftSparse struct {
	parts []ftSparsePart
	off   int64
	read  int64 // bytes handed out by Read
}

type ftSparsePart struct {
	data  []byte
	zeros int64 // if data is nil
}

func (s *ftSparse) size() int64 {
	var n int64
	for _, p := range s.parts {
		n += int64(len(p.data)) + p.zeros
	}
	return n
}

func (s *ftSparse) Read(b []byte) (int, error) {
	start := int64(0)
	for _, p := range s.parts {
		l := int64(len(p.data)) + p.zeros
		if s.off < start+l {
			rel := s.off - start
			var n int
			if p.data != nil {
				n = copy(b, p.data[rel:])
			} else {
				n = int(min(int64(len(b)), l-rel))
				clear(b[:n])
			}
			s.off += int64(n)
			s.read += int64(n)
			return n, nil
		}
		start += l
	}
	return 0, io.EOF
}

func (s *ftSparse) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.off
	case io.SeekEnd:
		off += s.size()
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	s.off = off
	return off, nil
}

// TestMatroskaSkipsLargeElements replays a virtual 7 GB file whose bulk is
// a Void and an Attachments element: they must be seeked over, not read.
func TestMatroskaSkipsLargeElements(t *testing.T) {
	const gb = 1 << 30
	voidHdr := append(ftEbmlID(eidVoid), 0x01, 0, 0, 0x01, 0x00, 0x00, 0x00, 0x00) // 4 GiB
	attHdr := append(ftEbmlID(eidAttachments), 0x01, 0, 0, 0x00, 0xC0, 0x00, 0x00, 0x00)
	clusters := bytes.Repeat(ftEl(eidCluster, ftElUint(eidTimecode, 0), ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0)))), 3)
	f := &ftSparse{parts: []ftSparsePart{
		{data: ftMKVHead(1e6)},
		{data: voidHdr}, {zeros: 4 * gb},
		{data: clusters[:len(clusters)/3]},
		{data: attHdr}, {zeros: 3 * gb},
		{data: clusters[len(clusters)/3:]},
	}}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc
	d, err := newMatroskaReader(f, true)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ftDemux(d)
	if err != io.EOF || len(ps) != 3 {
		t.Fatalf("%d packets, err %v; want 3, io.EOF", len(ps), err)
	}
	runtime.ReadMemStats(&ms)
	if n := ms.TotalAlloc - alloc; n > 1<<20 {
		t.Errorf("allocated %d bytes", n)
	}
	if f.read > 1<<20 {
		t.Errorf("read %d bytes of a %d-byte file", f.read, f.size())
	}
}

// --- Synthetic AVI. ---

func ftChunk(id string, body ...[]byte) []byte {
	data := bytes.Join(body, nil)
	b := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(data)))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func ftList(typ string, body ...[]byte) []byte {
	return ftChunk("LIST", append([][]byte{[]byte(typ)}, body...)...)
}

func ftLe32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

// ftSynthAVI is RIFF 'AVI ' (riffSize 0: computed) with an hdrl: stream 0
// is 16-bit PCM at 8 kHz stereo, stream 1 MJPEG 64x48 at 25 fps starting at
// frame 2, followed by the given RIFF-level chunks.
func ftSynthAVI(riffSize uint32, body ...[]byte) []byte {
	strh := func(typ, handler string, scale, rate, start uint32) []byte {
		b := append([]byte(typ+handler), make([]byte, 12)...)
		return append(append(b, ftLe32(scale, rate, start)...), make([]byte, 24)...)
	}
	bih := append(ftLe32(40, 64, uint32(-48&0xFFFFFFFF)), 1, 0, 24, 0)
	bih = append(append(bih, "MJPG"...), make([]byte, 20)...)
	wfx := []byte{1, 0, 2, 0}
	wfx = append(append(wfx, ftLe32(8000, 32000)...), 4, 0, 16, 0, 0, 0)
	hdrl := ftList("hdrl",
		ftChunk("avih", make([]byte, 56)),
		ftList("strl", ftChunk("strh", strh("auds", "\x00\x00\x00\x00", 4, 32000, 0)), ftChunk("strf", wfx)),
		ftList("strl", ftChunk("strh", strh("vids", "MJPG", 1, 25, 2)), ftChunk("strf", bih), ftChunk("JUNK", make([]byte, 33))),
	)
	b := append([]byte("AVI "), hdrl...)
	b = append(b, bytes.Join(body, nil)...)
	if riffSize == 0 {
		riffSize = uint32(len(b))
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), riffSize), b...)
}

func TestAVISynthetic(t *testing.T) {
	movi := ftList("movi",
		ftChunk("01dc", ftFakeJPEG(0)),
		ftChunk("00wb", make([]byte, 401)), // odd: padded; 100.25 samples
		ftList("rec ", ftChunk("01dc"), ftChunk("01dc", ftFakeJPEG(2)), ftChunk("00wb", make([]byte, 399))),
		ftChunk("02tx", []byte("subtitle")),
		ftChunk("ix01", make([]byte, 24)),
		ftChunk("01dc", ftFakeJPEG(3)),
	)
	avix := append(binary.LittleEndian.AppendUint32([]byte("RIFF"), 4+uint32(len(ftList("movi", ftChunk("01dc", ftFakeJPEG(4)))))), "AVIX"...)
	avix = append(avix, ftList("movi", ftChunk("01dc", ftFakeJPEG(4)))...)
	file := append(ftSynthAVI(0, ftChunk("JUNK", make([]byte, 10)), ftList("INFO", ftChunk("ISFT", []byte("x"))), movi, ftChunk("idx1", make([]byte, 64))), avix...)
	want := []ftWantPacket{
		{Video, 80 * time.Millisecond, 6},
		{Audio, 0, 401},
		{Video, 160 * time.Millisecond, 6}, // frame 1 was empty
		{Audio, 12500 * time.Microsecond, 399},
		{Video, 200 * time.Millisecond, 6},
		{Video, 240 * time.Millisecond, 6},
	}
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file)
		if !seek {
			r = struct{ io.Reader }{r}
		}
		d, err := newAVIReader(r, true)
		if err != nil {
			t.Fatal(err)
		}
		wantTracks := []Track{
			{Kind: Video, Codec: CodecMJPEG, Width: 64, Height: 48, FPS: 25},
			{Kind: Audio, Codec: CodecPCMS16, SampleRate: 8000, Channels: 2, BitDepth: 16},
		}
		if got := d.tracks(); len(got) != 2 || got[0] != wantTracks[0] || got[1] != wantTracks[1] {
			t.Errorf("tracks = %+v, want %+v", got, wantTracks)
		}
		ps, err := ftDemux(d)
		if err != io.EOF {
			t.Fatalf("after %d packets: %v", len(ps), err)
		}
		ftCheckPackets(t, ps, want)
	}

	// A writer cut off mid-file leaves unknown sizes on RIFF and movi.
	cut := ftSynthAVI(0xFFFFFFFF, ftList("movi", ftChunk("01dc", ftFakeJPEG(0)), ftChunk("00wb", make([]byte, 400)), ftChunk("01dc", ftFakeJPEG(1))))
	moviAt := bytes.Index(cut, []byte("movi")) - 4
	binary.LittleEndian.PutUint32(cut[moviAt:], 0xFFFFFFFF)
	cut = cut[:len(cut)-3]
	d, err := newAVIReader(bytes.NewReader(cut), false)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ftDemux(d)
	if err != io.EOF {
		t.Fatal(err)
	}
	ftCheckPackets(t, ps, []ftWantPacket{{Video, 80 * time.Millisecond, 6}})
}

func TestAVIErrors(t *testing.T) {
	tests := []struct {
		name string
		file []byte
		open bool
		want string
	}{
		{"beyond parent", ftSynthAVI(0, ftList("movi", ftChunk("01dc", ftFakeJPEG(0))), []byte("01dc\xff\xff\x00\x00")), false, "read avi: chunk 01dc at offset "},
		{"beyond movi", ftSynthAVI(0, ftList("movi", []byte("01dc\x10\x00\x00\x00")), make([]byte, 32)), false, "exceeds its parent"},
		{"no movi", ftSynthAVI(0), true, "read avi: no movi list"},
		{"not avi", []byte("RIFF\x04\x00\x00\x00WAVE"), true, "read avi: not an AVI file"},
		{"cut header", ftSynthAVI(0)[:40], true, "read avi: file ends before its movi list"},
		{"movi first", append([]byte("RIFF\xff\xff\xff\xffAVI "), ftList("movi")...), true, "movi list comes before the hdrl list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := newAVIReader(bytes.NewReader(tt.file), true)
			if !tt.open && err == nil {
				_, err = ftDemux(d)
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// ftWriteTemp writes b to a file in a test directory.
func ftWriteTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenFileDetectsByContent(t *testing.T) {
	// Matroska named .avi and AVI named .mkv.
	for name, b := range map[string][]byte{"x.avi": ftSynthMKV(), "x.mkv": ftSynthAVI(0, ftList("movi", ftChunk("01dc", ftFakeJPEG(0)))), "x": ftSynthMKV()} {
		src, err := OpenFile(ftWriteTemp(t, name, b), Fast, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ftReadAll(t, src)) == 0 {
			t.Errorf("%s: no packets", name)
		}
		src.Close()
	}
	for _, b := range [][]byte{[]byte("\x00\x00\x00\x20ftypisom"), []byte("RIFF\x00\x00\x00\x00WAVEfmt "), {}} {
		_, err := OpenFile(ftWriteTemp(t, "x", b), Fast, true)
		if err == nil || !strings.HasPrefix(err.Error(), "open file: ") {
			t.Errorf("% x: err = %v", b, err)
		} else {
			t.Log(err)
		}
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.mkv"), Fast, true); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// ftSlowMKV has a frame at 0 and one at 10 s.
func ftSlowMKV() []byte {
	return bytes.Join([][]byte{
		ftMKVHead(1e6),
		ftEl(eidCluster, ftElUint(eidTimecode, 0), ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0)))),
		ftEl(eidCluster, ftElUint(eidTimecode, 10000), ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(1)))),
	}, nil)
}

func TestFileCloseUnblocksNext(t *testing.T) {
	src, err := OpenFile(ftWriteTemp(t, "slow.mkv", ftSlowMKV()), Realtime, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(context.Background())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next still blocked 2s after Close")
	}
	if _, err := src.Next(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close = %v, want os.ErrClosed", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestFileContextKeepsPacket(t *testing.T) {
	file := append(ftMKVHead(1e6),
		ftEl(eidCluster, ftElUint(eidTimecode, 0),
			ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, ftFakeJPEG(0))),
			ftEl(eidSimpleBlock, ftBlock(1, 300, 0x80, ftFakeJPEG(1))))...,
	)
	src, err := OpenFile(ftWriteTemp(t, "two.mkv", file), Realtime, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p0, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expiring context = %v", err)
	}
	p1, err := src.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := p1.PTS - p0.PTS; d != 300*time.Millisecond || !bytes.Equal(p1.Data, ftFakeJPEG(1)) {
		t.Errorf("packet after the timeout: %v later, data % x", d, p1.Data)
	}
	if now := Now(); now < p1.PTS {
		t.Errorf("packet at %v delivered at %v", p1.PTS, now)
	}
	if _, err := src.Next(context.Background()); err != io.EOF {
		t.Errorf("end = %v", err)
	}
}

// TestFileBoundedMemory replays a 96 MB file and checks that the heap does
// not grow with it.
func TestFileBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 96 MB file")
	}
	path := filepath.Join(t.TempDir(), "big.mkv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	frame := append(append([]byte{0xFF, 0xD8}, bytes.Repeat([]byte{0x55}, 256<<10)...), 0xFF, 0xD9)
	if _, err := f.Write(ftMKVHead(1e6)); err != nil {
		t.Fatal(err)
	}
	const frames = 384
	for i := range frames {
		if _, err := f.Write(ftEl(eidCluster, ftElUint(eidTimecode, uint64(i*40)), ftEl(eidSimpleBlock, ftBlock(1, 0, 0x80, frame)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	src, err := OpenFile(path, Fast, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var peak uint64
	n := 0
	for ; ; n++ {
		p, err := src.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Data) != len(frame) {
			t.Fatalf("frame %d: %d bytes", n, len(p.Data))
		}
		if n%16 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if n != frames {
		t.Errorf("%d frames, want %d", n, frames)
	}
	t.Logf("heap peak %.1f MB above the start while replaying %d MB", float64(peak-min(peak, base))/(1<<20), frames*len(frame)>>20)
	if peak > base+16<<20 {
		t.Errorf("heap grew by %d MB while replaying a %d MB file", (peak-base)>>20, frames*len(frame)>>20)
	}
}

func BenchmarkFileReplay(b *testing.B) {
	ftNeedFFmpeg(b)
	path := ftRunFFmpeg(b, b.TempDir(), "bench.mkv",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", "5", "-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le", "-ac", "1")
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	packets := 0
	for b.Loop() {
		src, err := OpenFile(path, Fast, true)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := src.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			packets++
		}
		src.Close()
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
}
