package capture

import (
	"bytes"
	"context"
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

	"attune.dev/attune/internal/demux/demuxtest"
	"attune.dev/attune/mkv"
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
func ftReadAll(tb testing.TB, src Source) []mkv.Packet {
	tb.Helper()
	var ps []mkv.Packet
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
			if v.Kind != mkv.Video || v.Codec != mkv.CodecMJPEG || v.Width != 320 || v.Height != 240 {
				t.Errorf("video track = %+v", v)
			}
			if math.Abs(v.FPS-30) > 0.01 {
				t.Errorf("video FPS = %v, want 30", v.FPS)
			}
			if a.Kind != mkv.Audio || a.Codec != mkv.CodecPCMS16 || a.SampleRate != 48000 || a.Channels != 1 || a.BitDepth != 16 {
				t.Errorf("audio track = %+v", a)
			}

			ps := ftReadAll(t, src)
			if _, err := src.Next(context.Background()); err != io.EOF {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
			var video []mkv.Packet
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
				case mkv.Video:
					video = append(video, p)
					if !ftIsJPEG(p.Data) {
						t.Errorf("video packet %d is not a JPEG: % x ... % x", len(video)-1, p.Data[:min(4, len(p.Data))], p.Data[max(0, len(p.Data)-2):])
					}
				case mkv.Audio:
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
		if trk := src.Tracks(); len(trk) != 1 || trk[0].Kind != mkv.Video {
			t.Errorf("%s: tracks = %+v, want video only", ext, trk)
		}
		ps := ftReadAll(t, src)
		for _, p := range ps {
			if p.Kind != mkv.Video {
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
				if trk := s.Tracks(); len(trk) != 1 || trk[0].Kind != mkv.Video {
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
					if p.Kind == mkv.Video {
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
	for _, name := range []string{"mkv/testdata/tiny.mkv", "avi/testdata/tiny.avi"} {
		src, err := OpenFile(filepath.Join("..", name), Fast, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []mkv.Track{
			{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 16, Height: 16, FPS: 30},
			{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 1000, Channels: 1, BitDepth: 16},
		}
		if got := src.Tracks(); !slices.Equal(got, want) {
			t.Errorf("%s: tracks = %+v, want %+v", name, got, want)
		}
		ps := ftReadAll(t, src)
		src.Close()
		var kinds []mkv.Kind
		for _, p := range ps {
			kinds = append(kinds, p.Kind)
			if p.Kind == mkv.Video && !ftIsJPEG(p.Data) || p.Kind == mkv.Audio && len(p.Data) != 134 {
				t.Errorf("%s: %v packet of %d bytes", name, p.Kind, len(p.Data))
			}
		}
		if !slices.Equal(kinds, []mkv.Kind{mkv.Video, mkv.Audio, mkv.Video}) {
			t.Errorf("%s: packets %v, want video, audio, video", name, kinds)
		}
		if len(ps) == 3 {
			if d := ps[2].PTS - ps[0].PTS; d < 33*time.Millisecond || d > 34*time.Millisecond {
				t.Errorf("%s: frames %v apart", name, d)
			}
		}
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
	for name, b := range map[string][]byte{"x.avi": demuxtest.SynthMKV(), "x.mkv": demuxtest.SynthAVI(0, demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(0)))), "x": demuxtest.SynthMKV()} {
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

func TestFileCloseUnblocksNext(t *testing.T) {
	src, err := OpenFile(ftWriteTemp(t, "slow.mkv", demuxtest.SlowMKV()), Realtime, true)
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
	file := append(demuxtest.MKVHead(1e6),
		demuxtest.El(demuxtest.IDCluster, demuxtest.ElUint(demuxtest.IDTimecode, 0),
			demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x80, demuxtest.FakeJPEG(0))),
			demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 300, 0x80, demuxtest.FakeJPEG(1))))...,
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
	if d := p1.PTS - p0.PTS; d != 300*time.Millisecond || !bytes.Equal(p1.Data, demuxtest.FakeJPEG(1)) {
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
	if _, err := f.Write(demuxtest.MKVHead(1e6)); err != nil {
		t.Fatal(err)
	}
	const frames = 384
	for i := range frames {
		if _, err := f.Write(demuxtest.El(demuxtest.IDCluster, demuxtest.ElUint(demuxtest.IDTimecode, uint64(i*40)), demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x80, frame)))); err != nil {
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
