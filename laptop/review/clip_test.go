package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	if f.Len() < 80 || f.Audio == nil || len(f.PCM) == 0 {
		t.Fatalf("film: %d frames, audio %v", f.Len(), f.Audio)
	}
	dir := t.TempDir()
	full := filepath.Join(dir, "full.mkv")
	if _, err := f.WriteClip(context.Background(), 0, f.Len()-1, MKV, full, ClipOptions{}); err != nil {
		t.Fatal(err)
	}
	want := frameHash(t, full, 10)
	for _, format := range []Format{MKV, MOV, AVI, MP4} {
		path := filepath.Join(dir, "clip."+string(format))
		d, err := f.WriteClip(context.Background(), 10, 39, format, path, ClipOptions{})
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if b, _ := os.ReadFile(path); d.Bytes != int64(len(b)) || d.SHA256 != fmt.Sprintf("%x", sha256.Sum256(b)) {
			t.Errorf("%s: digest %+v is not the file's (%d bytes)", format, d, len(b))
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
			if !bytes.Equal(p.Data, frameOf(t, f, 10+frames)) {
				t.Errorf("avi frame %d differs from film frame %d", frames, 10+frames)
			}
			frames++
		} else {
			pcm = append(pcm, p.Data...)
		}
	}
	pk, _ := f.clipPackets(10, 39)
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
	if frames := copiedFrames(t, mov); len(frames) != 30 || !bytes.Equal(frames[0], frameOf(t, f, 10)) || !bytes.Equal(frames[29], frameOf(t, f, 39)) {
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

// TestReadSpan: a span read from the stream holds the same frames, and its
// clip the same packets, as that part of the whole film, for frame
// numbers, times and both mixed; a span past the end or ending before it
// starts is refused with what the recording holds.
func TestReadSpan(t *testing.T) {
	b, err := stream3s()
	if err != nil {
		t.Fatal(err)
	}
	whole := testFilm(t)
	defer func(v int64) { pcmTrimStep = v }(pcmTrimStep)
	pcmTrimStep = 4096 // so that the sound before a span is dropped as it would be from a long film
	at := func(n int) Point { return Point{Frame: -1, Time: whole.PTS[n] - whole.PTS[0]} }
	mid := func(n int) Point { return Point{Frame: -1, Time: whole.PTS[n] - whole.PTS[0] + time.Millisecond} }
	last := whole.Len() - 1
	for _, c := range []struct {
		name     string
		from, to Point
		a, b     int
	}{
		{"frames", Point{Frame: 40}, Point{Frame: 69}, 40, 69},
		{"one frame", Point{Frame: 50}, Point{Frame: 50}, 50, 50},
		{"times on frames", at(40), at(69), 40, 69},
		{"times within frames", mid(40), mid(69), 40, 69},
		{"time to frame", mid(40), Point{Frame: 40}, 40, 40},
		{"frame to time", Point{Frame: 40}, mid(41), 40, 41},
		{"from the start", Point{Frame: 0}, Point{Frame: 9}, 0, 9},
		{"to the end", mid(70), mid(last), 70, last},
	} {
		f, err := ReadSpan(context.Background(), bytes.NewReader(b), c.from, c.to)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if f.First != c.a || f.Len() != c.b-c.a+1 || f.Origin != whole.PTS[0] {
			t.Errorf("%s: frames %d to %d (origin %v), want %d to %d", c.name, f.First, f.First+f.Len()-1, f.Origin, c.a, c.b)
			continue
		}
		got, err := f.clipPackets(0, f.Len()-1)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := whole.clipPackets(c.a, c.b)
		if len(got) != len(want) {
			t.Errorf("%s: %d packets, want %d", c.name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].Kind != want[i].Kind || got[i].PTS != want[i].PTS || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("%s: packet %d (%s at %v, %d bytes) differs from the whole film's (%s at %v, %d bytes)", c.name, i,
					got[i].Kind, got[i].PTS, len(got[i].Data), want[i].Kind, want[i].PTS, len(want[i].Data))
				break
			}
		}
		if c.a > 40 && f.pcmBase == 0 {
			t.Errorf("%s: the sound before the span stayed in memory", c.name)
		}
		if w := f.ClipWhat(0, f.Len()-1); w != whole.ClipWhat(c.a, c.b) {
			t.Errorf("%s: described as %q, want %q", c.name, w, whole.ClipWhat(c.a, c.b))
		}
	}
	for _, c := range []struct {
		from, to Point
		want     string
	}{
		{Point{Frame: 20}, Point{Frame: 10}, "end must not be before the start"},
		{mid(20), mid(10), "end must not be before the start"},
		{Point{Frame: 20}, mid(10), "end must not be before the start"},
		{mid(20), Point{Frame: 10}, "end must not be before the start"},
		{Point{Frame: 5}, Point{Frame: last + 1}, fmt.Sprintf("the recording has frames 0 to %d", last)},
		{Point{Frame: last + 1}, Point{Frame: last + 2}, fmt.Sprintf("the recording has frames 0 to %d", last)},
		{mid(5), Point{Frame: -1, Time: time.Hour}, "the recording is " + FormatTime(whole.Duration()-whole.PTS[0]) + " long"},
	} {
		if _, err := ReadSpan(context.Background(), bytes.NewReader(b), c.from, c.to); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v to %v: %v, want %q", c.from, c.to, err, c.want)
		}
	}
}

// TestLoadSpanSeeks: a span given by times, well into a vault recording,
// is read from the segment before it on (the frames before it are not
// decrypted; their numbers are then not known), and holds the same frames
// as that part of the whole film, and its sound; one near the start reads
// from the start and knows its frame numbers; one past the end says how
// long the recording is.
func TestLoadSpanSeeks(t *testing.T) {
	home, c := newCase(t, "Seek family")
	vr := vaultRecording(t, home, c, 160, 120, 8)
	if n := len(vr.Index.Segments); n < 5 {
		t.Fatalf("%d segments: too few to seek in", n)
	}
	id, err := home.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := LoadFilm(context.Background(), vr, id)
	if err != nil {
		t.Fatal(err)
	}
	// The whole film keeps where its frames lie, not the frames: they are
	// decrypted from the vault when asked for (and compared with the
	// span's, read in memory, below).
	if whole.frames != nil || len(whole.refs) != whole.Len() || whole.Len() < 200 {
		t.Fatalf("whole film: %d frames in memory, %d in the vault, of %d", len(whole.frames), len(whole.refs), whole.Len())
	}
	// Its cache keeps to its budget in whole segments, and a frame whose
	// segment was dropped is decrypted again, the same.
	whole.segs.budget = 1
	first := bytes.Clone(frameOf(t, whole, 0))
	for i := range whole.Len() {
		frameOf(t, whole, i)
		if n := len(whole.segs.lru); n > cacheMin || len(whole.segs.have) > cacheMin {
			t.Fatalf("frame %d: %d segments cached, budget 1 byte", i, n)
		}
	}
	if !bytes.Equal(frameOf(t, whole, 0), first) {
		t.Fatal("frame 0 decrypted again differs")
	}
	whole.segs.budget = cacheBytes
	from, to := Point{Frame: -1, Time: 5*time.Second + 10*time.Millisecond}, Point{Frame: -1, Time: 6500 * time.Millisecond}
	f, err := LoadSpan(context.Background(), vr, id, from, to)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := whole.Resolve(from)
	b, _ := whole.Resolve(to)
	if f.First != -1 || f.Len() != b-a+1 || f.Origin != whole.PTS[0] || f.PTS[0] != whole.PTS[a] {
		t.Fatalf("span: first %d, %d frames from %v (origin %v), want a seek: %d frames from %v", f.First, f.Len(), f.PTS[0], f.Origin, b-a+1, whole.PTS[a])
	}
	for i := range f.Len() {
		if !bytes.Equal(frameOf(t, f, i), frameOf(t, whole, a+i)) {
			t.Fatalf("frame %d of the span is not frame %d of the film", i, a+i)
		}
	}
	got, _ := f.clipPackets(0, f.Len()-1)
	want, _ := whole.clipPackets(a, b)
	var gotPCM, wantPCM []byte
	for _, p := range got {
		if p.Kind == mkv.Audio {
			gotPCM = append(gotPCM, p.Data...)
		}
	}
	for _, p := range want {
		if p.Kind == mkv.Audio {
			wantPCM = append(wantPCM, p.Data...)
		}
	}
	// The sound is placed on the span's own sample grid: the same samples,
	// give or take the 2 ms a packet may be moved to join the one before.
	if d := len(gotPCM) - len(wantPCM); len(wantPCM) == 0 || d < -192 || d > 192 || !bytes.Contains(wantPCM, gotPCM[400:len(gotPCM)-400]) {
		t.Errorf("span sound: %d bytes, the film's %d, or different samples", len(gotPCM), len(wantPCM))
	}
	if w := f.ClipWhat(0, f.Len()-1); !strings.HasPrefix(w, "clip 00:05.0") || !strings.Contains(w, fmt.Sprintf("(%d frames)", b-a+1)) {
		t.Errorf("described as %q", w)
	}
	near, err := LoadSpan(context.Background(), vr, id, Point{Frame: -1, Time: 500 * time.Millisecond}, Point{Frame: -1, Time: time.Second})
	if err != nil || near.First != whole.FrameAt(whole.PTS[0]+500*time.Millisecond) {
		t.Errorf("span near the start: %v, first %d", err, near.First)
	}
	if _, err := LoadSpan(context.Background(), vr, id, from, Point{Frame: -1, Time: time.Hour}); err == nil || !strings.Contains(err.Error(), "the recording is 00:0") {
		t.Errorf("span past the end: %v", err)
	}
}

// frameOf is frame i of f.
func frameOf(t *testing.T, f *Film, i int) []byte {
	t.Helper()
	b, err := f.Frame(i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteSpan: a clip written as the span is read is the same file, byte
// for byte, as the span read whole and then written, in every lossless
// format, for a seek by times and for frame numbers.
func TestWriteSpan(t *testing.T) {
	home, c := newCase(t, "Span family")
	vr := vaultRecording(t, home, c, 160, 120, 8)
	id, err := home.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, pts := range [][2]Point{
		{{Frame: -1, Time: 4500 * time.Millisecond}, {Frame: -1, Time: 7 * time.Second}},
		{{Frame: 20}, {Frame: 130}},
	} {
		for _, format := range []Format{MKV, MOV, AVI} {
			whole, err := LoadSpan(context.Background(), vr, id, pts[0], pts[1])
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(dir, "want."+string(format))
			wd, err := whole.WriteClip(context.Background(), 0, whole.Len()-1, format, want, ClipOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := filepath.Join(dir, "got."+string(format))
			f, d, err := WriteSpan(context.Background(), vr, id, pts[0], pts[1], format, got, ClipOptions{})
			if err != nil {
				t.Fatalf("%v %s: %v", pts, format, err)
			}
			a, _ := os.ReadFile(want)
			b, _ := os.ReadFile(got)
			if !bytes.Equal(a, b) || d != wd || f.Len() != whole.Len() || f.First != whole.First || len(b) < 100000 {
				t.Errorf("%v %s: written as read: %d bytes (%+v), %d frames; read whole then written: %d bytes (%+v), %d frames",
					pts, format, len(b), d, f.Len(), len(a), wd, whole.Len())
			}
			if f.frames[0] != nil || f.frames[f.Len()-1] != nil {
				t.Errorf("%s: frames written are still held", format)
			}
		}
	}
	// A span past the end writes nothing, not even a part file.
	if _, _, err := WriteSpan(context.Background(), vr, id, Point{Frame: 10}, Point{Frame: 100000}, MKV, filepath.Join(dir, "none.mkv"), ClipOptions{}); err == nil {
		t.Error("a span past the end was written")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 6 {
		t.Errorf("%d files left, want the 6 clips", len(ents))
	}
}

// clipPackets are frames a to b (inclusive) of the film with the sound
// that goes with them, as WriteClip writes them, rebased to start at 0: each frame followed by the
// audio samples up to the next frame, the samples unchanged.
func (f *Film) clipPackets(a, b int) ([]mkv.Packet, error) {
	if err := f.checkRange(a, b); err != nil {
		return nil, err
	}
	var out []mkv.Packet
	for i := a; i <= b; i++ {
		var err error
		if out, err = f.framePackets(out, i, b, f.PTS[a]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
