package storage

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"attune.dev/attune/custody"
)

func x25519(t testing.TB) (*age.X25519Identity, Recipients) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	return id, rs
}

func hybrid(t testing.TB) (*age.HybridIdentity, Recipients) {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	return id, rs
}

func plenty(string) (uint64, error) { return 1 << 40, nil }

func openStore(t testing.TB, dir string, free func(string) (uint64, error)) *Store {
	t.Helper()
	s, err := Open(dir, Options{MinFree: 1 << 20, Free: free}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decryptFile(t testing.TB, path string, id age.Identity) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatalf("decrypt %s: %v", path, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decrypt %s: %v", path, err)
	}
	return b
}

// age's STREAM chunk size: test at its boundaries.
const chunk = 64 << 10

func TestSegmentsRoundTrip(t *testing.T) {
	for _, kind := range []string{KindX25519, KindHybrid} {
		t.Run(kind, func(t *testing.T) {
			var id age.Identity
			var rs Recipients
			if kind == KindX25519 {
				id, rs = x25519(t)
			} else {
				id, rs = hybrid(t)
			}
			s := openStore(t, t.TempDir(), plenty)
			rec, err := s.Create(rs, Manifest{Source: "testsrc"})
			if err != nil {
				t.Fatal(err)
			}
			sizes := []int{1, chunk - 1, chunk, chunk + 1, 3*chunk + 7}
			var want [][]byte
			var seals []Seal
			for _, n := range sizes {
				p := make([]byte, n)
				rand.Read(p)
				want = append(want, p)
				// Written in two pieces, as the muxer does.
				if _, err := rec.Write(p[:n/2]); err != nil {
					t.Fatal(err)
				}
				if _, err := rec.Write(p[n/2:]); err != nil {
					t.Fatal(err)
				}
				if err := rec.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rec.Flush(); err != nil { // nothing pending: no empty segment
				t.Fatal(err)
			}
			if err := rec.Close(func(m *Manifest) { m.EndReason = "stopped" }); err != nil {
				t.Fatal(err)
			}
			ix, err := s.Index(rec.ID())
			if err != nil {
				t.Fatal(err)
			}
			if ix.State != Complete || len(ix.Segments) != len(sizes) || ix.RecipientKind != kind {
				t.Fatalf("index = %+v", ix)
			}
			for i, seg := range ix.Segments {
				path := s.SegmentPath(rec.ID(), i)
				raw, _ := os.ReadFile(path)
				sum := sha256.Sum256(raw)
				if seg.SHA256 != hex.EncodeToString(sum[:]) || seg.Size != int64(len(raw)) {
					t.Errorf("segment %d: index hash/size do not match the file", i)
				}
				got := decryptFile(t, path, id)
				if len(got) < SealSize || !bytes.Equal(got[:len(got)-SealSize], want[i]) {
					t.Errorf("segment %d: plaintext differs (%d bytes, want %d and the seal)", i, len(got), len(want[i]))
					continue
				}
				seal, err := ReadSeal(got)
				if err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				seals = append(seals, seal)
			}
			var m Manifest
			if err := json.Unmarshal(decryptFile(t, filepath.Join(s.Dir(), rec.ID(), ManifestName), id), &m); err != nil {
				t.Fatal(err)
			}
			if m.ID != rec.ID() || m.Segments != len(sizes) || m.EndReason != "stopped" || m.Source != "testsrc" {
				t.Errorf("manifest = %+v", m)
			}
			// The seal chain: every segment under the manifest's key, in
			// order, each after the one before, the last the manifest's head.
			key, err := m.SealKeyBytes()
			if err != nil {
				t.Fatal(err)
			}
			for i := range seals {
				if err := seals[i].Verify(key, rec.ID(), i); err != nil {
					t.Errorf("segment %d: %v", i, err)
				}
				if i > 0 {
					if err := seals[i].Link(&seals[i-1]); err != nil {
						t.Error(err)
					}
					if err := seals[i].Verify(key, rec.ID(), i-1); err == nil {
						t.Errorf("segment %d verifies as segment %d", i, i-1)
					}
				}
			}
			if last := seals[len(seals)-1].MAC; m.ChainHead != hex.EncodeToString(last[:]) {
				t.Errorf("chain head %s, last MAC %x", m.ChainHead, last)
			}
			mraw, _ := os.ReadFile(filepath.Join(s.Dir(), rec.ID(), ManifestName))
			msum := sha256.Sum256(mraw)
			if ix.Manifest == nil || ix.Manifest.SHA256 != hex.EncodeToString(msum[:]) {
				t.Errorf("index does not describe the final manifest")
			}
		})
	}
}

func TestFlippedByteFailsAuthentication(t *testing.T) {
	id, rs := x25519(t)
	s := openStore(t, t.TempDir(), plenty)
	rec, _ := s.Create(rs, Manifest{})
	p := make([]byte, 2*chunk+100)
	rand.Read(p)
	rec.Write(p)
	rec.Close(nil)
	path := s.SegmentPath(rec.ID(), 0)
	orig, _ := os.ReadFile(path)
	// Flip a byte in the header, the first chunk, the last chunk and the tag.
	for _, off := range []int{10, len(orig) / 3, len(orig) - 20, len(orig) - 1} {
		b := bytes.Clone(orig)
		b[off] ^= 0x01
		r, err := age.Decrypt(bytes.NewReader(b), id)
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if err == nil {
			t.Errorf("flipped byte at %d of %d: decryption succeeded", off, len(b))
		}
	}
}

func TestMixedRecipientKindsRefused(t *testing.T) {
	a, _ := age.GenerateX25519Identity()
	b, _ := age.GenerateHybridIdentity()
	_, err := NewRecipients([]age.Recipient{a.Recipient(), b.Recipient()})
	if err == nil || !strings.Contains(err.Error(), "cannot be mixed") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseRecipients(strings.NewReader("# nothing\n\n"))
	if err == nil {
		t.Fatal("empty recipients accepted")
	}
	_, err = ParseRecipients(strings.NewReader("AGE-SECRET-KEY-1QQQ\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want the line named", err)
	}
}

func TestRecovery(t *testing.T) {
	id, rs := x25519(t)
	dir := t.TempDir()
	s := openStore(t, dir, plenty)
	rec, _ := s.Create(rs, Manifest{})
	rec.Write([]byte("first"))
	rec.Flush()
	rec.Write([]byte("second"))
	rec.Flush()
	// Killed while writing the third segment…
	rec.Write(bytes.Repeat([]byte("x"), 3*chunk))
	rdir := filepath.Join(s.Dir(), rec.ID())
	// …and just after sealing a segment the index does not yet list: put
	// one in place by hand.
	sealed := filepath.Join(rdir, SegmentName(2))
	f, _ := os.Create(sealed)
	w, _ := age.Encrypt(f, rs.List...)
	w.Write([]byte("third"))
	w.Close()
	f.Close()
	var temps int
	ents, _ := os.ReadDir(rdir)
	for _, e := range ents {
		if isTemp(e.Name()) {
			temps++
		}
	}
	if temps == 0 {
		t.Fatal("expected an open temp segment")
	}
	// A stray temp file in the store's top directory too.
	os.WriteFile(filepath.Join(s.Dir(), tmpPrefix+"junk"), []byte("j"), 0o600)

	s2 := openStore(t, dir, plenty)
	ix, err := s2.Index(rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	if ix.State != Interrupted || len(ix.Segments) != 3 {
		t.Fatalf("after recovery: state %s, %d segments", ix.State, len(ix.Segments))
	}
	for i, want := range []string{"first", "second", "third"} {
		if got := decryptFile(t, s2.SegmentPath(rec.ID(), i), id); !strings.HasPrefix(string(got), want) {
			t.Errorf("segment %d = %q", i, got)
		}
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if isTemp(d.Name()) {
			t.Errorf("temp file left: %s", p)
		}
		return nil
	})
	// Recovering again changes nothing.
	s3 := openStore(t, dir, plenty)
	ix3, _ := s3.Index(rec.ID())
	if ix3.State != Interrupted || len(ix3.Segments) != 3 {
		t.Fatalf("second recovery: %+v", ix3)
	}
	// A new recording gets a later sequence number.
	rec2, err := s3.Create(rs, Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	rec2.Close(nil)
	list, _ := s3.List()
	if len(list) != 2 || list[0].ID != rec.ID() || list[1].ID != rec2.ID() {
		t.Fatalf("list order wrong")
	}
}

func TestFullDisk(t *testing.T) {
	_, rs := x25519(t)
	var free atomic.Uint64
	free.Store(10 << 20)
	s := openStore(t, t.TempDir(), func(string) (uint64, error) { return free.Load(), nil })
	rec, err := s.Create(rs, Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100<<10)
	for i := 0; i < 3; i++ {
		if _, err := rec.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	free.Store(1<<20 + 50<<10) // just above the 1 MB floor: no room for a segment
	if _, err := rec.Write(p); !errors.Is(err, ErrFull) {
		t.Fatalf("write on a full store: %v, want ErrFull", err)
	}
	if err := rec.Flush(); !errors.Is(err, ErrFull) {
		t.Fatalf("flush after full: %v", err)
	}
	if err := rec.Close(func(m *Manifest) { m.EndReason = "disk-full" }); err != nil {
		t.Fatalf("close after full: %v", err)
	}
	ix, _ := s.Index(rec.ID())
	if ix.State != Complete || len(ix.Segments) != 3 {
		t.Fatalf("index after full: %s, %d segments", ix.State, len(ix.Segments))
	}
	free.Store(512 << 10) // below the floor
	if _, err := s.Create(rs, Manifest{}); !errors.Is(err, ErrFull) {
		t.Fatalf("create below the floor: %v", err)
	}
}

func FuzzParseIndex(f *testing.F) {
	ix := Index{Version: 1, ID: "0123456789abcdef", State: Complete, RecipientKind: KindX25519,
		Segments: []FileInfo{{Name: "000000.age", Size: 5, SHA256: strings.Repeat("a", 64)}}}
	b, _ := json.Marshal(ix)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := parseIndex(b)
		if err != nil {
			return
		}
		if !custody.ValidID(ix.ID) {
			t.Fatal("invalid id accepted")
		}
		for i, s := range ix.Segments {
			if s.Name != SegmentName(i) {
				t.Fatal("bad segment name accepted")
			}
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	_, rs := x25519(b)
	s := openStore(b, b.TempDir(), plenty)
	rec, _ := s.Create(rs, Manifest{})
	p := make([]byte, 100<<10) // one 720p MJPEG frame
	b.SetBytes(int64(len(p)) * 30)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 30; j++ { // one second of frames, then seal
			rec.Write(p)
		}
		if err := rec.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	rec.Close(nil)
}

func TestAck(t *testing.T) {
	_, rs := x25519(t)
	s := openStore(t, t.TempDir(), plenty)
	rec, _ := s.Create(rs, Manifest{})
	for i := 0; i < 3; i++ {
		rec.Write([]byte("segment"))
		rec.Flush()
	}
	// While recording: acknowledged segments go, the recording stays.
	if _, err := s.Ack(rec.ID(), []int{0, 1}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.SegmentPath(rec.ID(), 0)); !os.IsNotExist(err) {
		t.Fatal("acked segment still on disk")
	}
	if _, err := s.Ack(rec.ID(), []int{7}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of a missing segment: %v", err)
	}
	rec.Write([]byte("more"))
	if err := rec.Close(nil); err != nil {
		t.Fatal(err)
	}
	ix, _ := s.Index(rec.ID())
	if !ix.Segments[0].Acked || !ix.Segments[1].Acked || ix.Segments[2].Acked || len(ix.Segments) != 4 {
		t.Fatalf("index after partial ack: %+v", ix.Segments)
	}
	if un, err := s.Unsynced(); err != nil || len(un) != 1 || un[0].ID != rec.ID() {
		t.Fatalf("Unsynced with a partly acknowledged recording: %v, %v", un, err)
	}
	// Every segment but not the manifest: the marks exist only here.
	if _, err := s.Ack(rec.ID(), []int{2, 3}, false); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.Unsynced(); len(un) != 1 {
		t.Fatal("a recording whose manifest was never acknowledged counts as synced")
	}
	// Acking twice is harmless; acking the rest removes the recording.
	if _, err := s.Ack(rec.ID(), []int{0, 1, 2, 3}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), rec.ID())); !os.IsNotExist(err) {
		t.Fatal("fully acknowledged recording still on disk")
	}
	if un, err := s.Unsynced(); err != nil || len(un) != 0 {
		t.Fatalf("Unsynced after a full ack: %v, %v", un, err)
	}
	if _, err := s.Ack(rec.ID(), []int{0}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of a deleted recording: %v", err)
	}
	if _, err := s.Ack("../../etc", nil, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of a bad id: %v", err)
	}
}
