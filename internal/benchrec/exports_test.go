//go:build linux

package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/benchdoc"
	"attune.dev/attune/laptop/review"
)

// The libx264 baseline is attune's own ffmpeg command with the file in
// place of the pipe: every output setting is the same.
func TestFFmpegMP4Args(t *testing.T) {
	got, err := ffmpegMP4Args("in.mkv", "out.mp4")
	if err != nil {
		t.Fatal(err)
	}
	ours := review.FFmpegArgs("out.mp4", review.ClipOptions{})
	i := slices.Index(ours, "pipe:0")
	j := slices.Index(got, "in.mkv")
	if i < 0 || j < 0 || !slices.Equal(ours[i+1:], got[j+1:]) {
		t.Errorf("output arguments differ:\nours %q\nbase %q", ours, got)
	}
	if s := strings.Join(got, " "); !strings.Contains(s, "-ss 15 -to 45 -i in.mkv") || strings.Contains(s, "pipe:0") || strings.Contains(s, "-f matroska") {
		t.Errorf("baseline input: %s", s)
	}
}

// secs makes a contender whose rounds took these wall times.
func secs(label string, ws ...float64) *contender {
	k := &contender{label: label}
	for _, w := range ws {
		k.samples = append(k.samples, sample{wall: time.Duration(w * float64(time.Second)),
			procs: []proc{{name: label, user: time.Duration(w * float64(time.Second)), maxRSSKB: 20 << 10}}})
	}
	return k
}

// The README's lines are the report's figures: medians, ratios of the
// medians and the round-by-round range.
func TestReadmeLines(t *testing.T) {
	when := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	rec := report{when: when, in: input{seconds: 60}, rounds: 3,
		contenders: []*contender{secs("attuned record", 0.3, 0.3, 0.3), secs("ffmpeg | age", 0.6, 0.6, 0.6)},
		machine:    machine{load: "6.43 4.48 4.01"}}
	ex := &exportsReport{when: when, rounds: 3, contenders: []*contender{
		secs("attune clip --format mkv", 0.4, 0.3, 0.5),
		secs("ffmpeg -c copy", 0.2, 0.2, 0.25),
		secs("attune clip --format mp4", 12, 13, 20),
		secs("ffmpeg -c:v libx264", 10, 13, 16),
	}}
	got := readme(rec, ex)
	for _, want := range []string{
		"costs `attuned` 0.30 CPU s and 20 MB peak RSS: ×0.50 the CPU",
		"in 0.40 s: ×2.00 (round by round 1.50–2.00) the time of `ffmpeg -ss … -to … -c copy` on the plaintext file (×2.00 its CPU)",
		"the family MP4 in 13.00 s, ×1.00 (round by round 1.00–1.25) the time of `ffmpeg -c:v libx264` with the same settings (×1.00 its CPU;",
		"load average 6.43 4.48 4.01",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("readme lacks %q:\n%s", want, got)
		}
	}
	if tab := ex.table(); !strings.Contains(tab, "×2.00 (round by round 1.50–2.00) (goal ≤ 1.0, at least as fast: **missed**), CPU ×2.00") ||
		!strings.Contains(tab, "×1.00 (round by round 1.00–1.25) (goal ≤ 1.1: met), CPU ×1.00") {
		t.Errorf("exports table:\n%s", tab)
	}
	// Without the exports, the recording line alone.
	if got := readme(rec, nil); strings.Contains(got, "attune clip") || !strings.Contains(got, "×0.50 the CPU") {
		t.Errorf("readme without exports:\n%s", got)
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
