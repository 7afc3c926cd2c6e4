package system

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/custody"
	"attune.dev/attune/custody/custodytest"
	"attune.dev/attune/storage"
)

// auditTestChain writes n records to a new audit log and returns its path
// and contents.
func auditTestChain(t testing.TB, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), AuditFile)
	a, err := OpenAudit(path, custodytest.NewClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := a.Append(custodytest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw
}

func auditLines(raw []byte) [][]byte {
	return bytes.SplitAfter(raw, []byte("\n"))[:bytes.Count(raw, []byte("\n"))]
}

func TestAuditAppendReopenVerify(t *testing.T) {
	path, raw := auditTestChain(t, 100)
	recs, err := custody.VerifyChain(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 100 {
		t.Fatalf("%d records, want 100", len(recs))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if i > 0 && r.MonoMS <= recs[i-1].MonoMS {
			t.Fatalf("mono_ms not increasing at seq %d", r.Seq)
		}
	}
	if recs[0].Prev != custody.ZeroHash {
		t.Fatalf("first prev = %s", recs[0].Prev)
	}
	lines := auditLines(raw)
	if got, want := recs[50].Prev, custody.LineHash(bytes.TrimSuffix(lines[49], []byte("\n"))); got != want {
		t.Fatalf("prev of seq 51 = %s, want line hash of seq 50 %s", got, want)
	}

	a, err := OpenAudit(path, custodytest.NewClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	seq, head := a.Head()
	if seq != 100 || head != custody.LineHash(bytes.TrimSuffix(lines[99], []byte("\n"))) {
		t.Fatalf("head after reopen = %d %s", seq, head)
	}
	got, gotRaw, err := a.Records(0)
	if err != nil || len(got) != 100 || !bytes.Equal(gotRaw, raw) {
		t.Fatalf("Records(0) = %d records, %d bytes, %v", len(got), len(gotRaw), err)
	}
	r, err := a.Append(custody.Record{Event: custody.EventBoot, Seq: 7, Prev: custody.ZeroHash, Hash: custody.ZeroHash, MonoMS: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 101 || r.Prev != head || r.Hash == custody.ZeroHash {
		t.Fatalf("appended after reopen: %+v", r)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, raw) {
		t.Fatal("reopen changed earlier records")
	}
	if _, err := custody.VerifyChain(after); err != nil {
		t.Fatal(err)
	}
	tail, tailRaw, err := a.Records(98)
	if err != nil || len(tail) != 3 || tail[0].Seq != 99 || !bytes.Equal(tailRaw, after[len(after)-len(tailRaw):]) {
		t.Fatalf("Records(98) = %v, %v", tail, err)
	}
	if none, noneRaw, err := a.Records(101); err != nil || none != nil || noneRaw != nil {
		t.Fatalf("Records(101) = %v %q %v", none, noneRaw, err)
	}
}

func TestAuditTornTail(t *testing.T) {
	_, base := auditTestChain(t, 10)
	// The line record 11 would have been.
	_, nextLine, _ := custody.Seal(custody.Record{Event: custody.EventBoot}, 11, custody.LineHash(bytes.TrimSuffix(auditLines(base)[9], []byte("\n"))), 0, time.Time{}, false)
	for name, tail := range map[string][]byte{
		"half a line":       nextLine[:len(nextLine)/2],
		"zeros":             make([]byte, 300),
		"no newline":        nextLine,
		"one byte":          {'{'},
		"line then garbage": append(append([]byte(nil), nextLine[:7]...), 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), AuditFile)
			if err := os.WriteFile(path, append(append([]byte(nil), base...), tail...), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := OpenAudit(path, custodytest.NewClock().Now)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			after, _ := os.ReadFile(path)
			if !bytes.HasPrefix(after, base) {
				t.Fatal("earlier records changed")
			}
			recs, err := custody.VerifyChain(after)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 11 {
				t.Fatalf("%d records, want 10 and the recovery note", len(recs))
			}
			sum := sha256.Sum256(tail)
			note := recs[10]
			if note.Event != custody.EventRecovered || note.Detail != "torn_tail" || note.Bytes != int64(len(tail)) || note.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("recovery note = %+v", note)
			}
			if r, err := a.Append(custody.Record{Event: custody.EventBoot}); err != nil || r.Seq != 12 {
				t.Fatalf("append after recovery: %+v %v", r, err)
			}
		})
	}
}

func TestAuditBrokenMiddleRefused(t *testing.T) {
	path, raw := auditTestChain(t, 10)
	bad := bytes.Replace(raw, []byte(`"detail":"max-duration"`), []byte(`"detail":"max-duratioN"`), 1)
	if bytes.Equal(bad, raw) {
		t.Fatal("test chain lacks the field to alter")
	}
	// And a torn tail after it: recovery must not paper over the middle.
	bad = append(bad, `{"seq":11`...)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenAudit(path, nil)
	var ce *custody.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("OpenAudit = %v, want a break at seq 2", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, bad) {
		t.Fatal("OpenAudit changed a broken chain")
	}
}

func TestAuditConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), AuditFile)
	a, err := OpenAudit(path, custodytest.NewClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = map[uint64]bool{}
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := a.Append(custodytest.Record(w*each + i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seqs[r.Seq] {
					t.Errorf("seq %d returned twice", r.Seq)
				}
				seqs[r.Seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	recs, err := custody.VerifyChain(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != workers*each || len(seqs) != workers*each {
		t.Fatalf("%d records, %d seqs, want %d", len(recs), len(seqs), workers*each)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].MonoMS < recs[i-1].MonoMS {
			t.Fatalf("mono_ms goes back at seq %d", recs[i].Seq)
		}
	}
	a2, err := OpenAudit(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2.Close()
}

func TestAuditRejectsOutsideAllowedSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), AuditFile)
	a, err := OpenAudit(path, custodytest.NewClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for name, r := range map[string]custody.Record{
		"unknown event":   {Event: "smith_family_visit"},
		"no event":        {},
		"free text":       {Event: custody.EventBoot, Detail: "Visit to J. Smith"},
		"long detail":     {Event: custody.EventBoot, Detail: strings.Repeat("a", 33)},
		"uppercase":       {Event: custody.EventBoot, Detail: "Boot"},
		"recording id":    {Event: custody.EventRecordingStarted, Recording: "Smith"},
		"case label":      {Event: custody.EventPaired, CaseRef: "Smith family"},
		"sha256 not hex":  {Event: custody.EventReset, SHA256: strings.Repeat("z", 64)},
		"sha256 short":    {Event: custody.EventReset, SHA256: "abcd"},
		"negative":        {Event: custody.EventDeleted, Bytes: -1},
		"negative count":  {Event: custody.EventDeleted, Count: -1},
		"negative seg":    {Event: custody.EventAcknowledged, Segments: []int{-1}},
		"too many":        {Event: custody.EventAcknowledged, Segments: make([]int, custody.MaxLine)},
		"uppercase hexid": {Event: custody.EventRecordingStarted, Recording: "0123456789ABCDEF"},
	} {
		if _, err := a.Append(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if seq, _ := a.Head(); seq != 0 {
		t.Fatalf("refused records advanced the chain to %d", seq)
	}
	if raw, _ := os.ReadFile(path); len(raw) != 0 {
		t.Fatalf("refused records reached the file: %q", raw)
	}
	if _, err := a.Append(custody.Record{Event: custody.EventPaired, CaseRef: custody.CaseRef("Smith family"), SHA256: strings.Repeat("0f", 32)}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("Smith")) {
		t.Fatal("case label in the log")
	}
}

func TestAuditWallTime(t *testing.T) {
	c := custodytest.NewClock()
	c.Trusted = false
	a, err := OpenAudit(filepath.Join(t.TempDir(), AuditFile), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := a.Append(custody.Record{Event: custody.EventBoot})
	if err != nil {
		t.Fatal(err)
	}
	if r.Wall != "" || r.WallTrusted || r.MonoMS != 250 {
		t.Fatalf("untrusted record: %+v", r)
	}
	if _, ok := r.WallTime(); ok {
		t.Fatal("untrusted wall time returned")
	}
	c.Trusted = true
	r, err = a.Append(custody.Record{Event: custody.EventClockSet})
	if err != nil {
		t.Fatal(err)
	}
	w, ok := r.WallTime()
	if !ok || !r.WallTrusted || !w.Equal(time.Date(2026, 3, 1, 9, 0, 0, 500e6, time.UTC)) || r.Wall != "2026-03-01T09:00:00.5Z" {
		t.Fatalf("trusted record: %+v", r)
	}
}

func TestAuditClosed(t *testing.T) {
	a, err := OpenAudit(filepath.Join(t.TempDir(), AuditFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := a.Append(custody.Record{Event: custody.EventBoot}); err == nil {
		t.Fatal("append after close")
	}
	if _, _, err := a.Records(0); err == nil {
		t.Fatal("records after close")
	}
}

// auditTestStore makes a store with recordings in several states.
func auditTestStore(t *testing.T) (*storage.Store, map[string]*storage.Index) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := storage.NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	rcpt.CaseRef = "00112233aabbccdd"
	s, err := storage.Open(t.TempDir(), storage.Options{Free: func(string) (uint64, error) { return 1 << 40, nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	record := func(segments int) string {
		r, err := s.Create(rcpt, storage.Manifest{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range segments {
			if _, err := r.Write(bytes.Repeat([]byte{byte(i)}, 1000+i)); err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(nil); err != nil {
			t.Fatal(err)
		}
		return r.ID()
	}
	partly := record(3)
	synced := record(2)
	unsynced := record(1)
	if _, err := s.Ack(partly, []int{0, 2}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ack(synced, []int{0, 1}, true); err != nil {
		t.Fatal(err)
	}
	ixs := map[string]*storage.Index{}
	for _, id := range []string{partly, unsynced} {
		if ixs[id], err = s.Index(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Index(synced); err == nil {
		t.Fatal("fully acknowledged recording still on the device")
	}
	return s, ixs
}

func TestBuildCertificate(t *testing.T) {
	store, ixs := auditTestStore(t)
	if err := os.WriteFile(filepath.Join(store.Dir(), ".tmp-stray"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := custodytest.NewClock()
	a, err := OpenAudit(filepath.Join(t.TempDir(), AuditFile), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 5 {
		if _, err := a.Append(custodytest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := BuildCertificate(store, a, "0a1b2c3d4e5f6071")
	if err != nil {
		t.Fatal(err)
	}
	seq, head := a.Head()
	if c.AuditSeq != seq || c.AuditHead != head || !c.WallTrusted || c.Issued.IsZero() {
		t.Fatalf("certificate head/time: %+v", c)
	}
	if c.OtherEntries != 1 {
		t.Fatalf("other entries %d, want 1", c.OtherEntries)
	}
	if len(c.Recordings) != 2 {
		t.Fatalf("%d recordings listed, want 2 (the fully synced one was deleted earlier)", len(c.Recordings))
	}
	partly, unsynced := c.Recordings[0], c.Recordings[1]
	ixP, ixU := ixs[partly.ID], ixs[unsynced.ID]
	if ixP == nil || ixU == nil || len(ixP.Segments) != 3 || len(ixU.Segments) != 1 {
		t.Fatalf("recordings listed out of order or unknown: %s %s", partly.ID, unsynced.ID)
	}
	for i, s := range partly.Segments {
		if s.SHA256 != ixP.Segments[i].SHA256 || s.Size != ixP.Segments[i].Size {
			t.Fatalf("segment %d: %+v, index %+v", i, s, ixP.Segments[i])
		}
		if want := i != 1; s.Synced != want {
			t.Fatalf("segment %d synced = %v, want %v", i, s.Synced, want)
		}
	}
	if partly.Complete || unsynced.Complete || partly.State != "complete" || partly.CaseRef != "00112233aabbccdd" || partly.Manifest != ixP.Manifest.SHA256 || partly.ManifestSynced {
		t.Fatalf("recording entry: %+v", partly)
	}

	// The reset as the daemon does it: sign, erase, record.
	_, key, _ := ed25519.GenerateKey(nil)
	signed, err := custody.SignCertificate(c, key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.EraseAll()
	if err != nil || n != 2 {
		t.Fatalf("erase: %d %v", n, err)
	}
	reset, err := a.Append(custody.Record{Event: custody.EventReset, Count: n, SHA256: custody.CertificateDigest(signed)})
	if err != nil {
		t.Fatal(err)
	}
	if reset.Prev != c.AuditHead || reset.Seq != c.AuditSeq+1 {
		t.Fatal("reset record does not follow the certificate's head")
	}
	c2, err := BuildCertificate(store, a, "0a1b2c3d4e5f6071")
	if err != nil || len(c2.Recordings) != 0 || c2.OtherEntries != 0 {
		t.Fatalf("after erase: %+v %v", c2, err)
	}
	if _, err := BuildCertificate(store, nil, "x"); err == nil {
		t.Fatal("no audit accepted")
	}
}

func TestSegmentsDigest(t *testing.T) {
	ix := &storage.Index{Segments: []storage.FileInfo{{SHA256: strings.Repeat("a", 64)}, {SHA256: strings.Repeat("b", 64)}}}
	sum := sha256.Sum256([]byte(strings.Repeat("a", 64) + "\n" + strings.Repeat("b", 64) + "\n"))
	if got := SegmentsDigest(ix); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("SegmentsDigest = %s", got)
	}
}

// custodytest.Log stands in for this writer in the laptop's tests: both
// must write the same bytes for the same records and clock.
func TestAuditSameAsCustodytestLog(t *testing.T) {
	_, raw := auditTestChain(t, 30)
	l := custodytest.NewLog(custodytest.NewClock().Now)
	for i := range 30 {
		if _, err := l.Append(custodytest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(l.Bytes(), raw) {
		t.Fatalf("custodytest.Log wrote\n%s\nthe audit log\n%s", l.Bytes(), raw)
	}
}
