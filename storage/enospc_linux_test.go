package storage

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// TestRealENOSPC fills a real 2 MB tmpfs while free-space accounting is
// blind (it reports plenty), so the kernel's ENOSPC is what ends the
// recording: the partial segment is dropped, every sealed one is intact and
// the index still says complete.
func TestRealENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "attune-enospc", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()
	id, rs := x25519(t)
	s := openStore(t, dir, plenty)
	rec, err := s.Create(rs, Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 150<<10)
	var werr error
	sealed := 0
	for i := 0; i < 100 && werr == nil; i++ {
		if _, werr = rec.Write(p); werr == nil {
			if werr = rec.Flush(); werr == nil {
				sealed++
			}
		}
	}
	if !errors.Is(werr, ErrFull) {
		t.Fatalf("filling the disk: %v, want ErrFull", werr)
	}
	if err := rec.Close(nil); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}
	ix, err := s.Index(rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ix.State != Complete || len(ix.Segments) != sealed || sealed < 5 {
		t.Fatalf("state %s, %d segments in index, %d sealed", ix.State, len(ix.Segments), sealed)
	}
	for i := range ix.Segments {
		if got := decryptFile(t, s.SegmentPath(rec.ID(), i), id); len(got) != len(p)+SealSize {
			t.Errorf("segment %d: %d bytes", i, len(got))
		}
	}
	ents, _ := os.ReadDir(dir + "/recordings/" + rec.ID())
	for _, e := range ents {
		if isTemp(e.Name()) {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}
