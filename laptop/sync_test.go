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

	"attune.dev/attune/custody"
	"attune.dev/attune/custody/custodytest"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// fakeDevice serves one recording from memory, as link.Client would.
type fakeDevice struct {
	mu            sync.Mutex
	ix            *storage.Index
	files         map[string][]byte // by name; "manifest.age" for the manifest
	acked         []int
	manifestAcked bool
	audit         []byte // the device's audit chain
}

func (d *fakeDevice) Audit(context.Context, uint64) ([]byte, error) { return d.audit, nil }

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
	d.manifestAcked = d.manifestAcked || manifest
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
			// Chunk boundaries, a tampered segment (index hash of other
			// bytes) and one sealed to another key.
			sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 5000, 7000}
			dev := sealedRecording(t, c, rcpt, sizes, true)
			for n := range sizes {
				name := storage.SegmentName(n)
				b := dev.files[name]
				if n == 7 {
					var out bytes.Buffer
					w, _ := age.Encrypt(&out, other.Recipient())
					w.Write(make([]byte, 7000))
					w.Close()
					b = out.Bytes()
					sum := sha256.Sum256(b)
					dev.ix.Segments[n] = storage.FileInfo{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
				}
				if n == 6 {
					b = append([]byte(nil), b...)
					b[len(b)/2] ^= 1
				}
				dev.files[name] = b
			}

			res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rs := res.Recordings[0]
			if rs.Fetched != 8 || rs.Acked != 6 || rs.Held != 6 || rs.Complete || len(rs.Problems) != 2 || dev.manifestAcked {
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

// sealedRecording records, with the device's own store, one segment of
// random bytes per size (sealed to rcpt, for case c) and returns a fake
// device serving it. ended: the recording was closed (complete);
// otherwise the store is reopened as after a power cut (interrupted).
func sealedRecording(t *testing.T, c *Case, rcpt age.Recipient, sizes []int, ended bool) *fakeDevice {
	t.Helper()
	data := t.TempDir()
	opts := storage.Options{Free: func(string) (uint64, error) { return 1 << 40, nil }}
	s, err := storage.Open(data, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := storage.NewRecipients([]age.Recipient{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	rs.CaseRef = c.ID
	rec, err := s.Create(rs, storage.Manifest{Source: "testsrc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range sizes {
		p := make([]byte, size)
		rand.Read(p)
		if _, err := rec.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if ended {
		if err := rec.Close(func(m *storage.Manifest) { m.EndReason = "stopped" }); err != nil {
			t.Fatal(err)
		}
	} else if s, err = storage.Open(data, opts, nil); err != nil { // the power cut
		t.Fatal(err)
	}
	ix, err := s.Index(rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	dev := &fakeDevice{ix: ix, files: map[string][]byte{}}
	for _, fi := range append([]storage.FileInfo{*ix.Manifest}, ix.Segments...) {
		b, err := os.ReadFile(filepath.Join(data, storage.RecordingsDir, ix.ID, fi.Name))
		if err != nil {
			t.Fatal(err)
		}
		dev.files[fi.Name] = b
	}
	return dev
}

// rebuildIndex rewrites a fake device's index from its segment files,
// 000000.age, 000001.age, … as someone holding the card would: every entry
// matches its file.
func (d *fakeDevice) rebuildIndex() {
	d.ix.Segments = nil
	for n := 0; ; n++ {
		b, ok := d.files[storage.SegmentName(n)]
		if !ok {
			break
		}
		sum := sha256.Sum256(b)
		d.ix.Segments = append(d.ix.Segments, storage.FileInfo{Name: storage.SegmentName(n), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
}

func newSyncCase(t *testing.T) (*Home, *Case, age.Recipient) {
	t.Helper()
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
	return h, c, rcpt
}

func ackedSet(d *fakeDevice) map[int]bool {
	out := map[int]bool{}
	for _, n := range d.acked {
		out[n] = true
	}
	return out
}

// TestSyncDroppedAndRenumbered: someone holding the card deletes segment 5
// of an 11-segment recording, renumbers the rest and rebuilds index.json.
// Every file still decrypts and matches the index; the seal chain shows
// the gap: the moved segments and the manifest are not acknowledged, the
// recording is not complete and stays on the device.
func TestSyncDroppedAndRenumbered(t *testing.T) {
	h, c, rcpt := newSyncCase(t)
	dev := sealedRecording(t, c, rcpt, []int{900, 800, 700, 600, 500, 400, 300, 200, 100, 50, 10}, true)
	for n := 5; n < 10; n++ {
		dev.files[storage.SegmentName(n)] = dev.files[storage.SegmentName(n+1)]
	}
	delete(dev.files, storage.SegmentName(10))
	dev.rebuildIndex()

	res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := res.Recordings[0]
	if rs.Complete || dev.manifestAcked || len(rs.Problems) == 0 {
		t.Fatalf("a recording missing segment 5 synced as %+v (manifest acknowledged: %v)", rs, dev.manifestAcked)
	}
	acked := ackedSet(dev)
	for n := range 10 {
		if acked[n] != (n < 5) {
			t.Errorf("segment %d acknowledged: %v", n, acked[n])
		}
	}
	all := strings.Join(rs.Problems, "\n")
	if !strings.Contains(all, "segment 5: it is sealed as segment 6, not 5") || !strings.Contains(all, "the manifest says the recording has 11 segments, the device lists 10") {
		t.Errorf("problems:\n%s", all)
	}
	if _, err := os.Stat(filepath.Join(h.recordingDir(c.ID, dev.ix.ID), storage.SegmentName(5))); err == nil {
		t.Error("a moved segment is in the vault")
	}
}

// TestSyncSwappedBetweenRecordings: segment 2 swapped between two
// recordings of the same case, both indexes rebuilt. Neither recording is
// complete, and neither segment 2 is acknowledged.
func TestSyncSwappedBetweenRecordings(t *testing.T) {
	h, c, rcpt := newSyncCase(t)
	sizes := []int{3000, 2000, 1000, 500}
	a := sealedRecording(t, c, rcpt, sizes, true)
	b := sealedRecording(t, c, rcpt, sizes, true)
	n2 := storage.SegmentName(2)
	a.files[n2], b.files[n2] = b.files[n2], a.files[n2]
	a.rebuildIndex()
	b.rebuildIndex()
	for _, dev := range []*fakeDevice{a, b} {
		res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rs := res.Recordings[0]
		if rs.Complete || dev.manifestAcked || ackedSet(dev)[2] || len(dev.acked) != 3 {
			t.Errorf("recording with a swapped segment 2: %+v, acknowledged %v, manifest %v", rs, dev.acked, dev.manifestAcked)
		}
		if !strings.Contains(strings.Join(rs.Problems, "\n"), "segment 2: its seal does not match this recording") {
			t.Errorf("problems: %q", rs.Problems)
		}
	}
}

// TestSyncInterrupted: a recording cut off by a power cut has no count
// or chain head in its manifest; it verifies up to its last sealed segment,
// all of it is acknowledged and it is complete in the vault.
func TestSyncInterrupted(t *testing.T) {
	h, c, rcpt := newSyncCase(t)
	dev := sealedRecording(t, c, rcpt, []int{3000, 2000, 1000}, false)
	if dev.ix.State != storage.Interrupted {
		t.Fatalf("state %s", dev.ix.State)
	}
	res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := res.Recordings[0]
	if !rs.Complete || len(rs.Problems) != 0 || len(dev.acked) != 3 || !dev.manifestAcked {
		t.Fatalf("interrupted recording: %+v, acknowledged %v, manifest %v", rs, dev.acked, dev.manifestAcked)
	}
	// A splice is still caught without a chain head.
	h2, c2, rcpt2 := newSyncCase(t)
	dev = sealedRecording(t, c2, rcpt2, []int{3000, 2000, 1000}, false)
	dev.files[storage.SegmentName(1)], dev.files[storage.SegmentName(2)] = dev.files[storage.SegmentName(2)], dev.files[storage.SegmentName(1)]
	dev.rebuildIndex()
	res, err = h2.Sync(context.Background(), dev, &Device{ID: "dev", Case: c2.ID}, SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := res.Recordings[0]; rs.Complete || ackedSet(dev)[1] || ackedSet(dev)[2] || dev.manifestAcked {
		t.Errorf("interrupted recording with segments 1 and 2 swapped: %+v, acknowledged %v", rs, dev.acked)
	}
}

// TestSyncAuditSealedCount: the device's audit chain records how many
// segments each recording was sealed with. Sync compares that count with
// the manifest's (the seal chain's), and, where the manifest is gone and
// the recording looks cut off by a power loss, with the segments listed: a
// difference is a problem and the manifest is not acknowledged.
func TestSyncAuditSealedCount(t *testing.T) {
	chainWith := func(id string, count int) []byte {
		l := custodytest.NewLog(custodytest.NewClock().Now)
		for _, r := range []custody.Record{
			{Event: custody.EventRecordingStarted, Recording: id},
			{Event: custody.EventRecordingSealed, Recording: id, Count: count, Bytes: 1},
		} {
			if _, err := l.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		return l.Bytes()
	}
	sizes := []int{900, 800, 700, 600, 500, 400}
	t.Run("agrees", func(t *testing.T) {
		h, c, rcpt := newSyncCase(t)
		dev := sealedRecording(t, c, rcpt, sizes, true)
		dev.audit = chainWith(dev.ix.ID, len(sizes))
		res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
		if err != nil || !res.Recordings[0].Complete || !dev.manifestAcked {
			t.Fatalf("sync: %+v %v", res, err)
		}
	})
	t.Run("manifest differs", func(t *testing.T) {
		h, c, rcpt := newSyncCase(t)
		dev := sealedRecording(t, c, rcpt, sizes, true)
		dev.audit = chainWith(dev.ix.ID, len(sizes)+1)
		res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rs := res.Recordings[0]
		if rs.Complete || dev.manifestAcked || !strings.Contains(strings.Join(rs.Problems, "\n"), "audit chain says the recording was sealed with 7 segments, its manifest says 6") {
			t.Fatalf("a count the audit chain contradicts synced as %+v (manifest acknowledged: %v)", rs, dev.manifestAcked)
		}
	})
	t.Run("tail and manifest removed", func(t *testing.T) {
		h, c, rcpt := newSyncCase(t)
		dev := sealedRecording(t, c, rcpt, sizes, true)
		dev.audit = chainWith(dev.ix.ID, len(sizes))
		delete(dev.files, storage.SegmentName(5))
		delete(dev.files, storage.SegmentName(4))
		delete(dev.files, storage.ManifestName)
		dev.rebuildIndex()
		dev.ix.Manifest = nil
		dev.ix.State = storage.Interrupted
		res, err := h.Sync(context.Background(), dev, &Device{ID: "dev", Case: c.ID}, SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rs := res.Recordings[0]
		if !strings.Contains(strings.Join(rs.Problems, "\n"), "sealed with 6 segments, the device lists 4") {
			t.Fatalf("a truncated recording without its manifest synced as %+v", rs)
		}
	})
}
