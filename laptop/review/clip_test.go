package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"attune.dev/attune/avi"
	"attune.dev/attune/capture"
	"attune.dev/attune/mkv"
)

type memSink struct{ bytes.Buffer }

func (*memSink) Flush() error { return nil }

var stream3s = sync.OnceValues(func() ([]byte, error) {
	var sink memSink
	_, err := capture.Record(context.Background(), []capture.Source{capture.NewPatternSource(capture.Fast), capture.NewToneSource(capture.Fast)},
		&sink, capture.RecordOptions{MaxDuration: 3 * time.Second})
	return sink.Bytes(), err
})

func testFilm(t *testing.T) *Film {
	t.Helper()
	b, err := stream3s()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadFilm(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not installed (-short)", tool)
			}
			t.Fatalf("%s not installed: run make deps", tool)
		}
	}
}

// frameCount is the number of video frames ffprobe counts by decoding.
func frameCount(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v %s", path, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	if err != nil {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	return n
}

// frameHash decodes frame n of path and hashes its pixels.
func frameHash(t *testing.T, path string, n int) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-vf", "select=eq(n\\,"+strconv.Itoa(n)+")", "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("decode frame %d of %s: %v", n, path, err)
	}
	s := sha256.Sum256(out)
	return hex.EncodeToString(s[:])
}

// copiedFrames are path's video packets as ffmpeg copies them out, one
// JPEG file each: the frames the file holds, unchanged.
func copiedFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-c", "copy", "-f", "image2",
		filepath.Join(dir, "%04d.jpg")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg copying the frames of %s: %v %s", path, err, out)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	var frames [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	return frames
}

func TestParsePoint(t *testing.T) {
	for in, want := range map[string]Point{
		"0": {Frame: 0}, "1875": {Frame: 1875}, "01:02.500": {Frame: -1, Time: 62500 * time.Millisecond},
		"2.25": {Frame: -1, Time: 2250 * time.Millisecond}, "1:00:00.000": {Frame: -1, Time: time.Hour},
	} {
		if got, err := ParsePoint(in); err != nil || got != want {
			t.Errorf("ParsePoint(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-3", "1:2:3:4", "a", "1.5:00", "x:10"} {
		if _, err := ParsePoint(bad); err == nil || !strings.Contains(err.Error(), "give") {
			t.Errorf("ParsePoint(%q): %v, want an error saying what to give", bad, err)
		}
	}
}

// TestClipFormats cuts frames 10 to 39 in each format: ffprobe counts 30
// frames, the lossless clips' first frame decodes to the same pixels as
// frame 10 of the whole film, and their sound is the film's, sample for
// sample. The QuickTime movie's frames, as ffmpeg copies them out, are the
// film's JPEGs byte for byte.
func TestClipFormats(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	f := testFilm(t)
	if len(f.Frames) < 80 || f.Audio == nil || len(f.PCM) == 0 {
		t.Fatalf("film: %d frames, audio %v", len(f.Frames), f.Audio)
	}
	dir := t.TempDir()
	full := filepath.Join(dir, "full.mkv")
	if err := f.WriteClip(context.Background(), 0, len(f.Frames)-1, MKV, full, ClipOptions{}); err != nil {
		t.Fatal(err)
	}
	want := frameHash(t, full, 10)
	for _, format := range []Format{MKV, MOV, AVI, MP4} {
		path := filepath.Join(dir, "clip."+string(format))
		if err := f.WriteClip(context.Background(), 10, 39, format, path, ClipOptions{}); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if n := frameCount(t, path); n != 30 {
			t.Errorf("%s: ffprobe counts %d frames, want 30", format, n)
		}
		if format != MP4 {
			if got := frameHash(t, path, 0); got != want {
				t.Errorf("%s: first frame decodes differently from frame 10 of the film", format)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) == 0 {
			t.Fatal("nothing written")
		}
	}
	// The AVI reads back with the project's reader: the frames and the sound unchanged.
	af, _ := os.Open(filepath.Join(dir, "clip.avi"))
	defer af.Close()
	rd, err := avi.NewReader(af, true)
	if err != nil {
		t.Fatal(err)
	}
	var frames int
	var pcm []byte
	for {
		p, err := rd.Next()
		if err != nil {
			break
		}
		if p.Kind == mkv.Video {
			if !bytes.Equal(p.Data, f.Frames[10+frames]) {
				t.Errorf("avi frame %d differs from film frame %d", frames, 10+frames)
			}
			frames++
		} else {
			pcm = append(pcm, p.Data...)
		}
	}
	pk, _ := f.ClipPackets(10, 39)
	var wantPCM []byte
	for _, p := range pk {
		if p.Kind == mkv.Audio {
			wantPCM = append(wantPCM, p.Data...)
		}
	}
	if frames != 30 || !bytes.Equal(pcm, wantPCM) || len(pcm) == 0 {
		t.Errorf("avi read back: %d frames, %d audio bytes (want 30, %d identical)", frames, len(pcm), len(wantPCM))
	}
	mov := filepath.Join(dir, "clip.mov")
	if frames := copiedFrames(t, mov); len(frames) != 30 || !bytes.Equal(frames[0], f.Frames[10]) || !bytes.Equal(frames[29], f.Frames[39]) {
		t.Errorf("mov: ffmpeg copies out %d frames; want 30, the first and last the film's frames 10 and 39 byte for byte", len(frames))
	}
	if pcm, err := exec.Command("ffmpeg", "-v", "error", "-i", mov, "-map", "0:a", "-c:a", "pcm_s16le", "-f", "s16le", "-").Output(); err != nil || !bytes.Equal(pcm, wantPCM) {
		t.Errorf("mov: ffmpeg decodes %d bytes of sound (%v), want the clip's %d bytes unchanged", len(pcm), err, len(wantPCM))
	}
	s0 := f.sampleAt(f.PTS[10]) * int64(f.frameBytes())
	if !bytes.Equal(wantPCM, f.PCM[s0:s0+int64(len(wantPCM))]) {
		t.Error("clip sound is not the film's samples from its first frame on")
	}
}
