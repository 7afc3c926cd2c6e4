// Package benchdoc keeps the generated parts of docs/BENCHMARKS.md and of
// README.md: each benchmark program owns the text between its start and
// end markers and leaves the rest of the file alone. In docs/BENCHMARKS.md
// a program's section is created if missing (Update); in README.md the
// markers must already be there (Fill), so that the figures the README
// quotes are the last run's. Used by make bench only.
package benchdoc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"attune.dev/attune/storage"
)

// Update creates path or replaces the section between start and end
// (markers included in section), keeping the rest; written atomically.
func Update(path, start, end, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc, err := Replace(string(old), start, end, section)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return storage.WriteFileAtomic(path, []byte(doc), 0o644)
}

// Fill replaces what lies between the start and end markers of the
// existing file path with text, keeping the markers and everything else;
// written atomically. Unlike Update it never adds the markers: a file
// without them is an error (someone removed them by hand).
func Fill(path, start, end, text string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := Inside(string(old), start, end, text)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return storage.WriteFileAtomic(path, []byte(doc), 0o644)
}

// Inside puts text between the start and end markers of doc, each marker
// on a line of its own around it, in place of what was there.
func Inside(doc, start, end, text string) (string, error) {
	i, j := strings.Index(doc, start), strings.Index(doc, end)
	if i < 0 || j < i+len(start) || strings.Count(doc, start) != 1 || strings.Count(doc, end) != 1 {
		return "", fmt.Errorf("want one %s and after it one %s; put them back by hand", start, end)
	}
	return doc[:i+len(start)] + "\n" + strings.TrimRight(text, "\n") + "\n" + doc[j:], nil
}

// Replace puts section in place of the one between start and end in doc,
// or appends it; an empty doc gets a title.
func Replace(doc, start, end, section string) (string, error) {
	i, j := strings.Index(doc, start), strings.Index(doc, end)
	switch {
	case i >= 0 && j > i:
		rest := strings.TrimPrefix(doc[j+len(end):], "\n")
		return doc[:i] + section + rest, nil
	case i >= 0 || j >= 0:
		return "", fmt.Errorf("unmatched %s / %s markers; fix them by hand", start, end)
	case strings.TrimSpace(doc) == "":
		return "# Benchmarks\n\n" + section, nil
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section, nil
}

// Summary is the median and range of one measure over the rounds.
type Summary struct{ Med, Min, Max float64 }

// Summarize sorts a copy of xs and returns its median and range.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{Med: med, Min: s[0], Max: s[n-1]}
}

// Format prints "med (min–max)", or just med for one round.
func (s Summary) Format(prec int) string {
	m := strconv.FormatFloat(s.Med, 'f', prec, 64)
	if s.Min == s.Max {
		return m
	}
	return fmt.Sprintf("%s (%s–%s)", m, strconv.FormatFloat(s.Min, 'f', prec, 64), strconv.FormatFloat(s.Max, 'f', prec, 64))
}
