package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileAtomicReplaces: a second write replaces the file whole (as
// os.Rename does on every OS, Windows included) and leaves no temporary
// file behind.
func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "case.json")
	for _, body := range []string{"first, and longer", "second"} {
		if err := WriteFileAtomic(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != body {
			t.Fatalf("after writing %q: %q %v", body, b, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want only case.json", len(ents))
	}
	if err := SyncDir(dir); err != nil {
		t.Error(err)
	}
}
