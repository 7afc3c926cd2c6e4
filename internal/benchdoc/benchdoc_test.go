package benchdoc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Summary
		str  string
	}{
		{[]float64{3, 1, 2}, Summary{2, 1, 3}, "2.0 (1.0–3.0)"},
		{[]float64{4, 1, 2, 3}, Summary{2.5, 1, 4}, "2.5 (1.0–4.0)"},
		{[]float64{7}, Summary{7, 7, 7}, "7.0"},
	} {
		got := Summarize(tc.in)
		if got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
		if s := got.Format(1); s != tc.str {
			t.Errorf("format = %q, want %q", s, tc.str)
		}
	}
}

func TestSummarizeShort(t *testing.T) {
	s := Summarize([]float64{3, 1, 2})
	if s != (Summary{Med: 2, Min: 1, Max: 3}) || s.Format(1) != "2.0 (1.0–3.0)" {
		t.Errorf("summarize: %+v %q", s, s.Format(1))
	}
	if got := Summarize([]float64{4, 2}).Med; got != 3 {
		t.Errorf("median of two: %v", got)
	}
	if got := Summarize([]float64{5}).Format(0); got != "5" {
		t.Errorf("one round: %q", got)
	}
}

func TestParseCPUModel(t *testing.T) {
	x86 := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	pi := "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	for in, want := range map[string]string{x86: "AMD EPYC 7B13", pi: "BCM2835", "": "unknown"} {
		if got := parseCPUModel(in); got != want {
			t.Errorf("parseCPUModel = %q, want %q", got, want)
		}
	}
}

func TestMountOf(t *testing.T) {
	mounts := "/dev/vda / ext4 rw,relatime 0 0\ntmpfs /tmp tmpfs rw 0 0\ntmpfs /tmpx tmpfs ro 0 0\n"
	for path, want := range map[string]string{
		"/tmp/attune-bench": "tmpfs (rw) at /tmp",
		"/tmp":              "tmpfs (rw) at /tmp",
		"/tmpfoo/x":         "ext4 (rw,relatime) at /",
		"/work/main":        "ext4 (rw,relatime) at /",
	} {
		if got := mountOf(mounts, path); got != want {
			t.Errorf("mountOf(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestInside(t *testing.T) {
	const s, e = "<!-- x:start -->", "<!-- x:end -->"
	doc := "# T\n\nbefore\n" + s + "\nold figures\nmore\n" + e + "\nafter\n"
	got, err := Inside(doc, s, e, "new figures\n\n")
	if want := "# T\n\nbefore\n" + s + "\nnew figures\n" + e + "\nafter\n"; err != nil || got != want {
		t.Errorf("Inside = %q, %v; want %q", got, err, want)
	}
	// Filling again gives the same document.
	if again, err := Inside(got, s, e, "new figures"); err != nil || again != got {
		t.Errorf("Inside twice = %q, %v", again, err)
	}
	for _, bad := range []string{
		"no markers\n",
		"only " + s + "\n",
		"only " + e + "\n",
		e + " before " + s + "\n",
		s + e + s + e + "\n",
	} {
		if _, err := Inside(bad, s, e, "x"); err == nil {
			t.Errorf("Inside(%q) accepted", bad)
		}
	}
}

func TestFill(t *testing.T) {
	const s, e = "<!-- x:start -->", "<!-- x:end -->"
	path := filepath.Join(t.TempDir(), "README.md")
	if err := Fill(path, s, e, "x"); err == nil {
		t.Error("Fill of a missing file succeeded")
	}
	os.WriteFile(path, []byte("a\n"+s+"\nold\n"+e+"\nb\n"), 0o644)
	if err := Fill(path, s, e, "new"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a\n"+s+"\nnew\n"+e+"\nb\n" {
		t.Errorf("README after Fill: %q", b)
	}
	os.WriteFile(path, []byte("a\nb\n"), 0o644)
	if err := Fill(path, s, e, "new"); err == nil {
		t.Error("Fill added markers that were not there")
	}
	if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
		t.Errorf("a failed Fill changed the file: %q", b)
	}
}
