package link_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// age's STREAM chunk size: segments at its boundaries.
const chunk = 64 << 10

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestDownloadRanges(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	plain := [][]byte{randBytes(t, chunk-1), randBytes(t, chunk), randBytes(t, chunk+1), randBytes(t, 3*chunk+17)}
	ix := e.recording(plain...)
	ctx := context.Background()
	hc := e.raw(e.laptop)

	for n, fi := range ix.Segments {
		onDisk, err := os.ReadFile(e.b.Storage().SegmentPath(ix.ID, n))
		if err != nil {
			t.Fatal(err)
		}
		// Whole file.
		var buf bytes.Buffer
		got, err := c.Segment(ctx, ix.ID, n, 0, &buf)
		if err != nil {
			t.Fatalf("segment %d: %v", n, err)
		}
		if got != fi.Size || !bytes.Equal(buf.Bytes(), onDisk) {
			t.Fatalf("segment %d: got %d bytes, want the %d on disk", n, got, fi.Size)
		}
		if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != fi.SHA256 {
			t.Fatalf("segment %d: hash differs from the index", n)
		}
		// Resume from every interesting offset.
		for _, off := range []int64{1, chunk - 1, chunk, chunk + 1, fi.Size - 1, fi.Size} {
			if off > fi.Size {
				continue
			}
			var part bytes.Buffer
			got, err := c.Segment(ctx, ix.ID, n, off, &part)
			if err != nil {
				t.Fatalf("segment %d from %d: %v", n, off, err)
			}
			if got != fi.Size-off || !bytes.Equal(part.Bytes(), onDisk[off:]) {
				t.Fatalf("segment %d from %d: %d bytes, want the last %d", n, off, got, fi.Size-off)
			}
		}
		if _, err := c.Segment(ctx, ix.ID, n, fi.Size+1, io.Discard); err == nil {
			t.Errorf("segment %d: offset past the end accepted", n)
		}
		// A middle range and a suffix, raw.
		mid := fmt.Sprintf("bytes=%d-%d", fi.Size/3, fi.Size/2)
		st, body, hdr := do(t, hc, "GET", fmt.Sprintf("/api/v1/recordings/%s/segments/%d", ix.ID, n), "", "Range", mid)
		if st != http.StatusPartialContent || !bytes.Equal(body, onDisk[fi.Size/3:fi.Size/2+1]) {
			t.Errorf("segment %d %s: %d, %d bytes", n, mid, st, len(body))
		}
		if hdr.Get("ETag") != `"`+fi.SHA256+`"` {
			t.Errorf("segment %d: ETag %q, want the index's sha256", n, hdr.Get("ETag"))
		}
		st, body, _ = do(t, hc, "GET", fmt.Sprintf("/api/v1/recordings/%s/segments/%d", ix.ID, n), "", "Range", "bytes=-50")
		if st != http.StatusPartialContent || !bytes.Equal(body, onDisk[fi.Size-50:]) {
			t.Errorf("segment %d suffix: %d, %d bytes", n, st, len(body))
		}
		st, _, _ = do(t, hc, "GET", fmt.Sprintf("/api/v1/recordings/%s/segments/%d", ix.ID, n), "", "Range", fmt.Sprintf("bytes=%d-", fi.Size+10))
		if st != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("segment %d unsatisfiable range: %d", n, st)
		}
	}
	// What came over the link decrypts to what was recorded.
	for n := range ix.Segments {
		var buf bytes.Buffer
		// Resume halfway to exercise the splice.
		half := ix.Segments[n].Size / 2
		if _, err := c.Segment(ctx, ix.ID, n, 0, &limitedWriter{w: &buf, n: half}); err == nil {
			t.Fatal("limited writer did not fail")
		}
		if _, err := c.Segment(ctx, ix.ID, n, int64(buf.Len()), &buf); err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(&buf, e.id)
		if err != nil {
			t.Fatalf("segment %d does not decrypt: %v", n, err)
		}
		got, err := io.ReadAll(r)
		// Each segment's plaintext is what was recorded, then its seal.
		if err != nil || len(got) != len(plain[n])+storage.SealSize || !bytes.Equal(got[:len(plain[n])], plain[n]) {
			t.Fatalf("segment %d decrypts to other bytes (%v)", n, err)
		}
	}
	// The manifest too.
	var m bytes.Buffer
	if _, err := c.Manifest(ctx, ix.ID, &m); err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(&m, e.id)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	mb, _ := io.ReadAll(r)
	if !bytes.Contains(mb, []byte(ix.ID)) {
		t.Errorf("manifest %s does not name the recording", mb)
	}
}

// limitedWriter fails after n bytes, like a disk filling up mid-download.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, _ := l.w.Write(p)
	l.n -= int64(n)
	if l.n == 0 {
		return n, errors.New("disk full")
	}
	return n, nil
}

func TestAckDeletes(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	ctx := context.Background()
	ix := e.recording([]byte("zero"), []byte("one"), []byte("two"))
	dir := filepath.Dir(e.b.Storage().SegmentPath(ix.ID, 0))

	got, err := c.Ack(ctx, ix.ID, []int{0, 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Segments[0].Acked || got.Segments[1].Acked || !got.Segments[2].Acked {
		t.Errorf("index after ack: %+v", got.Segments)
	}
	for n, gone := range []bool{true, false, true} {
		_, err := os.Stat(e.b.Storage().SegmentPath(ix.ID, n))
		if gone != errors.Is(err, os.ErrNotExist) {
			t.Errorf("segment %d on disk after ack: %v", n, err)
		}
		_, err = c.Segment(ctx, ix.ID, n, 0, io.Discard)
		if gone != errors.Is(err, link.ErrNotFound) {
			t.Errorf("download of segment %d after ack: %v", n, err)
		}
	}
	// Acknowledging twice is harmless; an unknown segment changes nothing.
	if _, err := c.Ack(ctx, ix.ID, []int{0}, false); err != nil {
		t.Errorf("second ack: %v", err)
	}
	before := snapshot(t, e)
	if _, err := c.Ack(ctx, ix.ID, []int{1, 3}, false); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("ack of segment 3 of 3: %v", err)
	}
	if _, err := c.Ack(ctx, "0123456789abcdef", []int{0}, false); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("ack of an unknown recording: %v", err)
	}
	if snapshot(t, e) != before {
		t.Error("a refused ack changed state")
	}
	if _, err := os.Stat(e.b.Storage().SegmentPath(ix.ID, 1)); err != nil {
		t.Errorf("refused ack deleted segment 1: %v", err)
	}
	// The rest and the manifest: the recording is gone.
	if _, err := c.Ack(ctx, ix.ID, []int{1}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("recording directory after full ack: %v", err)
	}
	list, err := c.Recordings(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("recordings after full ack: %v, %v", list, err)
	}
	if _, err := c.Recording(ctx, ix.ID); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("index after full ack: %v", err)
	}
	if _, err := c.Manifest(ctx, ix.ID, io.Discard); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("manifest after full ack: %v", err)
	}
}

func TestListAndIndex(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	ctx := context.Background()
	list, err := c.Recordings(ctx)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("empty store: %v %v", list, err)
	}
	a := e.recording([]byte("a"))
	b := e.recording([]byte("b0"), []byte("b1"))
	list, err = c.Recordings(ctx)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("list: %v %v", list, err)
	}
	got, err := c.Recording(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != storage.Complete || len(got.Segments) != 2 || got.Segments[1].SHA256 != b.Segments[1].SHA256 || got.Manifest == nil || got.RecipientKind != storage.KindX25519 {
		t.Errorf("index %+v", got)
	}
}
