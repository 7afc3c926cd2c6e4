package laptop

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenMarks are out of order, one before the start, one past 99 minutes,
// with labels that need escaping or quoting.
var goldenMarks = []Mark{
	{Offset: 73400 * time.Millisecond},
	{Offset: 1500 * time.Millisecond, Label: "Shared smile"},
	{Offset: -2 * time.Second, Label: "  before\nthe start  "},
	{Offset: 3*time.Hour + 25*time.Minute + 7*time.Second + 999600*time.Microsecond, Label: `Turn-taking, "serve & return" <3 --> repair`},
	{Offset: 73400 * time.Millisecond, Label: "Same moment, second mark"},
	{Offset: 10 * time.Minute},
}

func TestWriteMarksGolden(t *testing.T) {
	for _, format := range []string{"vtt", "csv"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMarks(&b, goldenMarks, format); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "marks."+format)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("WriteMarks(%s):\n%s\nwant:\n%s", format, b.Bytes(), want)
			}
		})
	}
}

// ffmpeg reads the WebVTT file: one cue a mark, a second long.
func TestWriteMarksVTTParses(t *testing.T) {
	need(t, "ffprobe")
	var b bytes.Buffer
	if err := WriteMarks(&b, goldenMarks, "vtt"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "marks.vtt")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path)
	want := "0.000000,1.000000\n1.500000,1.000000\n73.400000,1.000000\n73.400000,1.000000\n600.000000,1.000000\n12308.000000,1.000000\n"
	if out != want {
		t.Errorf("ffprobe reads the cues as:\n%s\nwant:\n%s", out, want)
	}
}

func TestWriteMarksEmptyAndErrors(t *testing.T) {
	for format, want := range map[string]string{
		"vtt": "WEBVTT\n",
		"CSV": "index,offset_seconds,timecode,label\n",
	} {
		var b bytes.Buffer
		if err := WriteMarks(&b, nil, format); err != nil || b.String() != want {
			t.Errorf("%s: %q, %v", format, b.String(), err)
		}
	}
	if err := WriteMarks(new(bytes.Buffer), goldenMarks, "srt"); err == nil || !strings.Contains(err.Error(), "srt") {
		t.Errorf("unknown format: %v", err)
	}
	if err := WriteMarks(failWriter{}, goldenMarks, "vtt"); err == nil {
		t.Error("write error not reported (vtt)")
	}
	if err := WriteMarks(failWriter{}, goldenMarks, "csv"); err == nil {
		t.Error("write error not reported (csv)")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

// The chapters of an export name and order marks as WriteMarks does.
func TestChaptersMatchWriteMarks(t *testing.T) {
	atoms := chapters(goldenMarks, 20*time.Minute)
	want := []struct {
		start time.Duration
		title string
	}{
		{0, "before the start"},
		{1500 * time.Millisecond, "Shared smile"},
		{73400 * time.Millisecond, "Mark 3"},
		{73400 * time.Millisecond, "Same moment, second mark"},
		{10 * time.Minute, "Mark 5"},
	}
	if len(atoms) != len(want) {
		t.Fatalf("%d chapters: %+v", len(atoms), atoms)
	}
	for i, w := range want {
		a := atoms[i]
		if a.Start != w.start || a.Title != w.title {
			t.Errorf("chapter %d: %+v, want %+v", i, a, w)
		}
	}
	// A chapter ends where the next starts; one as long as nothing has no end.
	if atoms[0].End != 1500*time.Millisecond || atoms[2].End != 0 ||
		atoms[4].End != 20*time.Minute {
		t.Errorf("chapter ends %+v", atoms)
	}
}
