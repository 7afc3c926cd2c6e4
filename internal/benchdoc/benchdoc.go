// Package benchdoc keeps one generated section of docs/BENCHMARKS.md: each
// benchmark program owns the text between its start and end markers and
// leaves the rest of the file alone. Used by make bench only.
package benchdoc

import (
	"errors"
	"fmt"
	"os"
	"strings"
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
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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
