//go:build linux

package main

import (
	"strings"
	"testing"

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
