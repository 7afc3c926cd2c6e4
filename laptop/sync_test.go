package laptop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// fakeDevice serves one recording from memory, as link.Client would.
type fakeDevice struct {
	mu    sync.Mutex
	ix    *storage.Index
	files map[string][]byte // by name; "manifest.age" for the manifest
	acked []int
}

func (d *fakeDevice) SetClock(context.Context, time.Time) (link.ClockStatus, error) {
	return link.ClockStatus{}, nil
}

func (d *fakeDevice) Recordings(context.Context) ([]*storage.Index, error) {
	return []*storage.Index{d.ix}, nil
}

func (d *fakeDevice) OpenSegment(_ context.Context, _ string, n int, offset int64) (io.ReadCloser, error) {
	b := d.files[d.ix.Segments[n].Name]
	return io.NopCloser(bytes.NewReader(b[offset:])), nil
}

func (d *fakeDevice) Manifest(_ context.Context, _ string, w io.Writer) (int64, error) {
	n, err := w.Write(d.files[storage.ManifestName])
	return int64(n), err
}

func (d *fakeDevice) Ack(_ context.Context, _ string, segments []int, manifest bool) (*storage.Index, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acked = append(d.acked, segments...)
	return d.ix, nil
}

// TestSyncPaths syncs the same recording with segments held whole in
// memory and with segments streamed through age (segments larger than
// maxHeld): both store every good segment verified and acknowledged, and
// report a segment that does not match the index, or does not decrypt,
// without acknowledging it.
func TestSyncPaths(t *testing.T) {
	for _, held := range []int64{16 << 20, 0} {
		t.Run(fmt.Sprintf("maxHeld=%d", held), func(t *testing.T) {
			old := maxHeld
			maxHeld = held
			t.Cleanup(func() { maxHeld = old })
			h, err := OpenHome(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c, err := h.NewCase("Family A", true, "")
			if err != nil {
				t.Fatal(err)
			}
			rcpt, err := age.ParseX25519Recipient(c.Recipients[0])
			if err != nil {
				t.Fatal(err)
			}
			other, _ := age.GenerateX25519Identity()
			seal := func(r age.Recipient, size int) []byte {
				plain := make([]byte, size)
				rand.Read(plain)
				var out bytes.Buffer
				w, err := age.Encrypt(&out, r)
				if err != nil {
					t.Fatal(err)
				}
				w.Write(plain)
				w.Close()
				return out.Bytes()
			}
			dev := &fakeDevice{files: map[string][]byte{}}
			dev.ix = &storage.Index{Version: storage.IndexVersion, ID: "0123456789abcdef", State: storage.Complete, RecipientKind: "x25519", CaseRef: c.ID}
			// Chunk boundaries, a tampered segment (index hash of other
			// bytes) and one sealed to another key.
			sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 5000, 7000}
			for n, size := range sizes {
				b := seal(rcpt, size)
				if n == 7 {
					b = seal(other.Recipient(), size)
				}
				sum := sha256.Sum256(b)
				name := storage.SegmentName(n)
				if n == 6 {
					b = append([]byte(nil), b...)
					b[len(b)/2] ^= 1
				}
				dev.files[name] = b
				dev.ix.Segments = append(dev.ix.Segments, storage.FileInfo{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
			}
			m := seal(rcpt, 100)
			dev.files[storage.ManifestName] = m
			msum := sha256.Sum256(m)
			dev.ix.Manifest = &storage.FileInfo{Name: storage.ManifestName, Size: int64(len(m)), SHA256: hex.EncodeToString(msum[:])}

			res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rs := res.Recordings[0]
			if rs.Fetched != 8 || rs.Acked != 6 || rs.Held != 6 || rs.Complete || len(rs.Problems) != 2 {
				t.Fatalf("sync: %+v", rs)
			}
			if !strings.Contains(rs.Problems[0]+rs.Problems[1], "segment 6: its hash does not match") ||
				!strings.Contains(rs.Problems[0]+rs.Problems[1], "segment 7: does not decrypt with the case key") {
				t.Errorf("problems: %q", rs.Problems)
			}
			for _, n := range dev.acked {
				if n == 6 || n == 7 {
					t.Errorf("segment %d acknowledged", n)
				}
			}
			dir := h.recordingDir(c.ID, dev.ix.ID)
			for n, fi := range dev.ix.Segments {
				got, err := os.ReadFile(filepath.Join(dir, fi.Name))
				switch {
				case n >= 6 && err == nil:
					t.Errorf("segment %d is in the vault", n)
				case n < 6 && (err != nil || !bytes.Equal(got, dev.files[fi.Name])):
					t.Errorf("segment %d: %v, %d bytes", n, err, len(got))
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, ".partial-*"))
			if len(leftovers) != 0 {
				t.Errorf("partial files left: %v", leftovers)
			}
		})
	}
}
