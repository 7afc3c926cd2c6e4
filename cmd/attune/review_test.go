package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/laptop"
	"attune.dev/attune/laptop/review"
)

func TestOpenCommand(t *testing.T) {
	u := "http://127.0.0.1:1234/?token=x"
	for goos, want := range map[string][]string{
		"windows": {"rundll32", "url.dll,FileProtocolHandler", u},
		"darwin":  {"open", u},
		"linux":   {"xdg-open", u},
		"freebsd": {"xdg-open", u},
	} {
		if got := openCommand(goos, u); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", goos, got, want)
		}
	}
}

// TestClipStillUI: attune clip cuts the frames asked for, attune still
// writes the recorded JPEG, attune ui --no-open prints an address that
// needs its token.
func TestClipStillUI(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	e := newPaired(t)
	e.d.Record(t, 3*time.Second)
	if _, out, err := e.syncJSON(); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	home, _ := laptop.OpenHome(e.home)
	recs, _ := home.Recordings()
	cs, _ := home.Case(recs[0].Case)
	id, err := home.Identity(cs, func() (string, error) { return testPassphrase, nil })
	if err != nil {
		t.Fatal(err)
	}
	film, err := review.LoadFilm(context.Background(), recs[0], id)
	if err != nil {
		t.Fatal(err)
	}
	rec := recs[0].ID
	clip := filepath.Join(e.dir, "clip.mkv")
	// 00:00.334 is within frame 10 at 30 fps (10 → 333.3 ms).
	from := review.FormatTime(film.PTS[10] - film.PTS[0] + time.Millisecond)
	out, err := e.attune("clip", rec[:6], "--from", from, "--to", "39", "--out", clip)
	if err != nil || !strings.Contains(out, "frames 10 to 39") || !strings.Contains(out, "30 frames") {
		t.Fatalf("attune clip: %v\n%s", err, out)
	}
	cnt, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", clip).Output()
	if n, _ := strconv.Atoi(strings.TrimSpace(string(cnt))); err != nil || n != 30 {
		t.Errorf("ffprobe counts %q frames in the clip, want 30 (%v)", cnt, err)
	}
	still := filepath.Join(e.dir, "still.jpg")
	if out, err := e.attune("still", rec, "--at", "39", "--out", still); err != nil {
		t.Fatalf("attune still: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(still); !bytes.Equal(b, frameOf(t, film, 39)) {
		t.Error("the still is not the recorded JPEG of frame 39")
	}
	// Both copies are recorded with the case, with the frames they hold.
	ex, err := home.Exports(cs)
	if err != nil || len(ex) != 2 || !strings.Contains(ex[0].What, "(frames 10–39)") || ex[0].Path != clip ||
		!strings.Contains(ex[1].What, "(frame 39)") || ex[1].Purpose != laptop.ScopeSharedReview {
		t.Errorf("exports recorded: %+v %v, want the clip and the still", ex, err)
	}
	// Without consent to a family copy, a copy for the family is refused and nothing is written.
	if out, err := e.attune("case", "consent", cs.Label, "--who", "parent", "--filming", "--shared-review"); err != nil {
		t.Fatalf("consent: %v\n%s", err, out)
	}
	refused := filepath.Join(e.dir, "family.mkv")
	if out, err := e.attune("clip", rec, "--from", "0", "--to", "5", "--for", "family-copy", "--out", refused); err == nil || !strings.Contains(out, "family_copy") {
		t.Errorf("clip for the family without consent: %v\n%s", err, out)
	}
	if _, err := os.Stat(refused); err == nil {
		t.Error("the refused clip was written")
	}
	for _, bad := range [][]string{
		{"clip", rec, "--from", "10:00.000", "--to", "20", "--out", clip},
		{"clip", rec, "--from", "20", "--to", "10", "--out", clip},
		{"clip", rec, "--from", "0", "--to", "10", "--format", "webm", "--out", clip},
		{"still", rec, "--at", "1", "--out", filepath.Join(e.dir, "s.png")},
	} {
		if out, err := e.attune(bad...); err == nil || !strings.Contains(out, "attune:") {
			t.Errorf("%q: %v %s, want an error", bad, err, out)
		}
	}

	cmd := exec.Command(testutil.Binary(t, "attune"), "ui", "--no-open", "--addr", "127.0.0.1:0", "--home", e.home)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	u := strings.TrimSpace(line)
	if err != nil || !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.Contains(u, "?token=") {
		t.Fatalf("attune ui printed %q (%v)", line, err)
	}
	if r, err := http.Get(strings.SplitN(u, "?", 2)[0]); err != nil || r.StatusCode != 403 {
		t.Errorf("without the token: %v %v", r, err)
	}
	jar, _ := cookiejar.New(nil)
	if r, err := (&http.Client{Jar: jar}).Get(u); err != nil || r.StatusCode != 200 {
		t.Errorf("with the token: %v %v", r, err)
	}
}

// frameOf is frame i of f.
func frameOf(t *testing.T, f *review.Film, i int) []byte {
	t.Helper()
	b, err := f.Frame(i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
