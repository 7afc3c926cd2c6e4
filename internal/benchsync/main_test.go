//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/benchdoc"
)

func TestReplaceSection(t *testing.T) {
	sec := startMarker + "\nnew\n" + endMarker + "\n"
	for _, tc := range []struct{ doc, want string }{
		{"", "# Benchmarks\n\n" + sec},
		{"# Benchmarks\n\nother\n", "# Benchmarks\n\nother\n\n" + sec},
		{"a\n" + startMarker + "\nold\n" + endMarker + "\nb\n", "a\n" + sec + "b\n"},
	} {
		got, err := replaceSection(tc.doc, sec)
		if err != nil || got != tc.want {
			t.Errorf("replaceSection(%q) = %q, %v; want %q", tc.doc, got, err, tc.want)
		}
	}
	if _, err := replaceSection("x\n"+startMarker+"\n", sec); err == nil {
		t.Error("an unmatched marker was accepted")
	}
}

func TestParseSeconds(t *testing.T) {
	for s, want := range map[string]float64{"0": 0, "1.25s": 1.25, "450ms": 0.45, "20us": 20e-6, "flat": -1, "12.5%": -1} {
		if got := parseSeconds(s); got != want {
			t.Errorf("parseSeconds(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestFilesystemAndCPU(t *testing.T) {
	if fs := benchdoc.Filesystem("/"); !strings.Contains(fs, " at /") {
		t.Errorf("benchdoc.Filesystem(/) = %q", fs)
	}
	if _, err := procCPU(1); err != nil {
		t.Errorf("procCPU(1): %v", err)
	}
	if _, err := machineBusy(); err != nil {
		t.Errorf("machineBusy: %v", err)
	}
}

// walls makes a contender whose rounds took these many seconds.
func walls(key string, secs ...float64) *contender {
	k := &contender{key: key, label: key}
	for _, s := range secs {
		k.samples = append(k.samples, sample{wall: time.Duration(s * float64(time.Second))})
	}
	return k
}

// The figures the README quotes are the report's own: ratios of medians,
// round-by-round ranges, against plain curl and against curl then sync.
func TestReportReadme(t *testing.T) {
	r := report{
		when:   time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC),
		rec:    &recording{bytes: 1e9},
		rounds: 3,
		contenders: []*contender{
			walls("ours", 2, 2.5, 4),         // 500, 400, 250 MB/s
			walls("curl", 1.6, 2, 3),         // 625, 500, 333.3
			walls("curlsync", 2.2, 2.4, 3.6), // 454.5, 416.7, 277.8
			walls("scp", 5, 5, 5),            // 200
		},
		machine: machine{load: "5.54 3.26 3.64"},
	}
	got := r.readme()
	for _, want := range []string{
		"at 400 MB/s",
		"×0.80 (round by round 0.75–0.80) curl from nginx",
		"×0.96 (round by round 0.90–1.10) curl from nginx followed by `sync`",
		"×2.0 scp",
		"Median of 3 rounds on 2026-12-05, load average 5.54 3.26 3.64",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("readme() lacks %q:\n%s", want, got)
		}
	}
	g := r.goals()
	for _, want := range []string{"like for like, attune sync / (curl ← nginx, then sync): ×0.96", "attune sync / curlsync round by round: ×1.10, ×0.96, ×0.90."} {
		if !strings.Contains(g, want) {
			t.Errorf("goals() lacks %q:\n%s", want, g)
		}
	}
}

// make bench fills the README between these markers; without them it fails.
func TestReadmeHasMarkers(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := benchdoc.Inside(string(b), readmeStart, readmeEnd, "x"); err != nil {
		t.Error(err)
	}
}
