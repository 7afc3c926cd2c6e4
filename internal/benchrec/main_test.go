//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/testutil"
)

func TestReplaceSection(t *testing.T) {
	sec := startMarker + "\nnew\n" + endMarker + "\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "# Benchmarks\n\n" + sec},
		{"no markers", "# Benchmarks\n\nhand-written\n", "# Benchmarks\n\nhand-written\n\n" + sec},
		{"replace, keep around", "# B\n\nbefore\n\n" + startMarker + "\nold\nold\n" + endMarker + "\n\nafter\n",
			"# B\n\nbefore\n\n" + sec + "\nafter\n"},
		{"replace at end", "# B\n" + startMarker + "\nold\n" + endMarker + "\n", "# B\n" + sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := replaceSection(tc.doc, sec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
			// Running again changes nothing.
			again, err := replaceSection(got, sec)
			if err != nil || again != got {
				t.Errorf("second run: %q, %v", again, err)
			}
		})
	}
	for _, doc := range []string{startMarker + "\nx\n", "x\n" + endMarker + "\n", endMarker + "\n" + startMarker + "\n"} {
		if _, err := replaceSection(doc, sec); err == nil {
			t.Errorf("replaceSection(%q): no error for unmatched markers", doc)
		}
	}
}

func TestWithin(t *testing.T) {
	if err := within(104, 100, 0.05); err != nil {
		t.Error(err)
	}
	if err := within(94, 100, 0.05); err == nil {
		t.Error("94 of 100 accepted at 5%")
	}
}

// TestRunStages checks the pipeline plumbing and accounting with stock
// tools: every byte reaches the output, each process is accounted for, and
// a failing stage is reported.
func TestRunStages(t *testing.T) {
	for _, tool := range []string{"head", "cat", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	const n = 8 << 20
	cat := exec.Command("cat")
	cat.Stdout = out
	s, err := runStages(exec.Command("head", "-c", "8388608", "/dev/zero"), cat)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := out.Stat(); fi.Size() != n {
		t.Errorf("output %d bytes, want %d", fi.Size(), n)
	}
	if len(s.procs) != 2 || s.procs[0].name != "head" || s.procs[1].name != "cat" {
		t.Fatalf("procs %+v, want head and cat", s.procs)
	}
	for _, p := range s.procs {
		if p.maxRSSKB <= 0 {
			t.Errorf("%s: peak RSS %d KB", p.name, p.maxRSSKB)
		}
	}
	if s.rssSumKB() != s.procs[0].maxRSSKB+s.procs[1].maxRSSKB || s.rssMaxKB() > s.rssSumKB() {
		t.Errorf("rss sum %d, max %d of %+v", s.rssSumKB(), s.rssMaxKB(), s.procs)
	}
	if s.wall <= 0 || s.cpu() < 0 || s.cpu() > time.Minute {
		t.Errorf("wall %v, cpu %v", s.wall, s.cpu())
	}

	_, err = runStages(exec.Command("head", "-c", "10", "/dev/zero"), exec.Command("cat", "/nonexistent"))
	if err == nil || !strings.Contains(err.Error(), "cat") || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("failing stage: err %v, want cat's error and stderr", err)
	}
}

// TestRunStagesOwnRSS checks that a child's peak RSS is its own, not this
// process's: Linux starts ru_maxrss of a vforked child at its parent's.
func TestRunStagesOwnRSS(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("sleep not installed")
	}
	big := make([]byte, 96<<20)
	for i := range big {
		big[i] = 1 // resident, so this process's VmHWM is over 96 MB
	}
	if hwm := vmHWM("self"); hwm < 96<<10 {
		t.Fatalf("own VmHWM %d kB after touching 96 MB", hwm)
	}
	s, err := runStages(exec.Command("sleep", "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if rss := s.procs[0].maxRSSKB; rss <= 0 || rss > 32<<10 {
		t.Errorf("sleep's peak RSS %d kB, want its own (a few MB), not this process's", rss)
	}
	big[len(big)-1] = 2 // keep big alive until here
}

// TestRun runs the whole benchmark on a short input, as `make bench` does.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds attuned and runs ffmpeg (-short)")
	}
	testutil.Tool(t, "ffmpeg")
	testutil.Tool(t, "ffprobe")
	dir := t.TempDir()
	doc := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gobench := filepath.Join(dir, "gobench.txt")
	if err := os.WriteFile(gobench, []byte("BenchmarkSeal-2  100  7617906 ns/op\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := config{
		attuned: testutil.Binary(t, "attuned"), out: doc, rounds: 1, seconds: 5,
		work: filepath.Join(dir, "work"), gobench: gobench,
		ffmpeg: "ffmpeg", ffprobe: "ffprobe", age: testutil.StockAge(t), timeout: 2 * time.Minute,
	}
	var stdout, stderr strings.Builder
	if err := run(t.Context(), c, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| attuned record |") {
		t.Errorf("stdout has no table:\n%s", stdout.String())
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kept\n", startMarker, "| attuned record |", `| ffmpeg \| age `, "BenchmarkSeal-2", endMarker} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
	// Only the cached input and the recipients file stay behind.
	ents, _ := os.ReadDir(c.work)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mkv") && e.Name() != "recipients.txt" {
			t.Errorf("left behind in the work directory: %s", e.Name())
		}
	}
}
