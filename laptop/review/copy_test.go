package review

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/laptop"
)

// TestFamilyCopyRecorded: a family copy is a plaintext export of its case,
// recorded once, where attune export's are: in the case's exports (what
// case close and erase list) and its hash-chained laptop log (what attune
// audit shows). After a withdrawal of family_copy consent it is refused
// and nothing is written or recorded.
func TestFamilyCopyRecorded(t *testing.T) {
	home, c, f := familyCase(t)
	films := func(string) (*Film, error) { return f, nil }
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.Local)
	stick := filepath.Join(t.TempDir(), "The Brook family stick")
	req := CopyRequest{Folder: stick,
		Clips:  []Clip{{Recording: f.ID, In: 10, Out: 39, Label: "she waits"}},
		Stills: []Still{{Recording: f.ID, Frame: 39, Label: "smile"}}}
	if _, err := FamilyCopy(context.Background(), home, c, films, req, ClipOptions{FFmpeg: "/nonexistent/ffmpeg"}, now); err == nil {
		// That ffmpeg cannot run: the clip fails before anything is written.
		t.Fatal("a copy with a broken ffmpeg succeeded")
	}
	if ex, _ := home.Exports(c); len(ex) != 0 {
		t.Fatalf("a failed copy recorded %+v", ex)
	}
	res, err := FamilyCopy(context.Background(), home, c, films, req, ClipOptions{}, now)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := home.Exports(c)
	if err != nil || len(ex) != 2 {
		t.Fatalf("exports after the family copy: %+v %v", ex, err)
	}
	clip := filepath.Join(stick, "Clip 1."+string(res.Format))
	if ex[0].Purpose != laptop.ScopeFamilyCopy || ex[0].Path != clip || ex[0].Recording != f.ID || !strings.Contains(ex[0].What, "frames 10–39") || ex[0].SHA256 == "" {
		t.Errorf("the clip's record: %+v", ex[0])
	}
	if ex[1].Path != filepath.Join(stick, "Picture 1.jpg") || !strings.Contains(ex[1].What, "frame 39") || ex[1].Bytes != int64(len(frameOf(t, f, 39))) {
		t.Errorf("the picture's record: %+v", ex[1])
	}
	chain, err := home.LaptopChain(c)
	if err != nil {
		t.Fatal(err)
	}
	exported := 0
	for _, r := range chain {
		if r.Event == "exported" && r.Detail == laptop.ScopeFamilyCopy {
			exported++
		}
	}
	if exported != 2 {
		t.Errorf("the case's laptop chain has %d family copy records, want 2: %+v", exported, chain)
	}
	var audit strings.Builder
	if err := home.CaseReport(c, "text", &audit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(audit.String(), "clip ") || !strings.Contains(audit.String(), clip) || !strings.Contains(audit.String(), "family_copy") {
		t.Errorf("the audit does not show the family copy:\n%s", audit.String())
	}

	if err := home.WithdrawConsent(c, laptop.ScopeFamilyCopy, "the mother", "2025-03-04", now); err != nil {
		t.Fatal(err)
	}
	req.Folder = filepath.Join(t.TempDir(), "second")
	_, err = FamilyCopy(context.Background(), home, c, films, req, ClipOptions{}, now)
	if err == nil || !strings.Contains(err.Error(), "withdrawn on 2025-03-04") {
		t.Fatalf("a family copy after the withdrawal: %v, want refused", err)
	}
	if ex, _ := home.Exports(c); len(ex) != 2 {
		t.Errorf("the refused copy was recorded: %+v", ex)
	}
	if m, _ := filepath.Glob(filepath.Join(req.Folder, "*")); len(m) != 0 {
		t.Errorf("the refused copy wrote %v", m)
	}
}

// TestFamilyCopyWithoutFFmpeg: with no ffmpeg on the PATH the family's
// clip is the recorded pictures and sound in a QuickTime movie, which
// macOS's QuickTime Player opens (it does not open AVI): the clip's 30
// frames, the first the film's frame 10 byte for byte.
func TestFamilyCopyWithoutFFmpeg(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	home, c, f := familyCase(t)
	stick := filepath.Join(t.TempDir(), "stick")
	var res CopyResult
	var err error
	t.Run("no ffmpeg", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		res, err = FamilyCopy(context.Background(), home, c, func(string) (*Film, error) { return f, nil },
			CopyRequest{Folder: stick, Clips: []Clip{{Recording: f.ID, In: 10, Out: 39, Label: "she waits"}}}, ClipOptions{}, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != MOV || len(res.Files) != 2 || res.Files[0] != "Clip 1.mov" || !strings.Contains(res.Form, "QuickTime Player") {
		t.Fatalf("family copy without ffmpeg: %+v, want Clip 1.mov, a QuickTime movie", res)
	}
	clip := filepath.Join(stick, res.Files[0])
	if n := frameCount(t, clip); n != 30 {
		t.Errorf("the family's movie: ffprobe counts %d frames, want 30", n)
	}
	if frames := copiedFrames(t, clip); len(frames) == 0 || !bytes.Equal(frames[0], frameOf(t, f, 10)) {
		t.Errorf("the family's movie does not start with the film's frame 10 byte for byte (%d frames)", len(frames))
	}
}

// familyCase is a fresh home with one case and a test film that belongs
// to it, for the family copy's tests.
func familyCase(t *testing.T) (*laptop.Home, *laptop.Case, *Film) {
	t.Helper()
	home, c := newCase(t, "The Brook family")
	f := testFilm(t)
	f.ID = "0123456789abcdef"
	return home, c, f
}

// newCase is a fresh home with one case, its key without a passphrase.
func newCase(t *testing.T, label string) (*laptop.Home, *laptop.Case) {
	t.Helper()
	home, err := laptop.OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := home.NewCase(label, true, "")
	if err != nil {
		t.Fatal(err)
	}
	return home, c
}
