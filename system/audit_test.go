package system

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// auditTestClock is a fake clock: every call advances the monotonic time
// by 250 ms; the wall time is trusted once trusted is set.
type auditTestClock struct {
	mu      sync.Mutex
	mono    time.Duration
	wall    time.Time
	trusted bool
}

func (c *auditTestClock) now() (time.Duration, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mono += 250 * time.Millisecond
	return c.mono, c.wall.Add(c.mono), c.trusted
}

func newAuditTestClock() *auditTestClock {
	return &auditTestClock{wall: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), trusted: true}
}

// auditTestRecord is the n-th record of a varied test chain.
func auditTestRecord(n int) AuditRecord {
	id := fmt.Sprintf("%016x", 0xabc000+n/10)
	switch n % 6 {
	case 0:
		return AuditRecord{Event: AuditRecordingStarted, Recording: id, CaseRef: "00112233aabbccdd"}
	case 1:
		return AuditRecord{Event: AuditRecordingStopped, Recording: id, Detail: "max-duration"}
	case 2:
		return AuditRecord{Event: AuditRecordingSealed, Recording: id, Count: 12, Bytes: int64(1000 + n), SHA256: strings.Repeat("ab", 32)}
	case 3:
		return AuditRecord{Event: AuditSegmentTransferred, Recording: id, Segments: []int{0, 1, 2, n}, Bytes: 4096}
	case 4:
		return AuditRecord{Event: AuditAcknowledged, Recording: id, Segments: []int{0, 1, 2}, Detail: "manifest"}
	default:
		return AuditRecord{Event: AuditClockSet}
	}
}

// auditTestChain writes n records to a new audit log and returns its path
// and contents.
func auditTestChain(t testing.TB, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), AuditFile)
	a, err := OpenAudit(path, newAuditTestClock().now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := a.Append(auditTestRecord(i)); err != nil {
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

func wantBreak(t *testing.T, what string, raw []byte, seq uint64) {
	t.Helper()
	_, err := VerifyChain(raw)
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: VerifyChain = %v, want a *ChainError", what, err)
	}
	if ce.Seq != seq {
		t.Fatalf("%s: chain broken at seq %d (%v), want seq %d", what, ce.Seq, err, seq)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", seq)) {
		t.Fatalf("%s: error %q does not name seq %d", what, err, seq)
	}
}

func TestAuditAppendReopenVerify(t *testing.T) {
	path, raw := auditTestChain(t, 100)
	recs, err := VerifyChain(raw)
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
	if recs[0].Prev != ZeroHash {
		t.Fatalf("first prev = %s", recs[0].Prev)
	}
	lines := auditLines(raw)
	if got, want := recs[50].Prev, LineHash(bytes.TrimSuffix(lines[49], []byte("\n"))); got != want {
		t.Fatalf("prev of seq 51 = %s, want line hash of seq 50 %s", got, want)
	}

	a, err := OpenAudit(path, newAuditTestClock().now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	seq, head := a.Head()
	if seq != 100 || head != LineHash(bytes.TrimSuffix(lines[99], []byte("\n"))) {
		t.Fatalf("head after reopen = %d %s", seq, head)
	}
	got, gotRaw, err := a.Records(0)
	if err != nil || len(got) != 100 || !bytes.Equal(gotRaw, raw) {
		t.Fatalf("Records(0) = %d records, %d bytes, %v", len(got), len(gotRaw), err)
	}
	r, err := a.Append(AuditRecord{Event: AuditBoot, Seq: 7, Prev: ZeroHash, Hash: ZeroHash, MonoMS: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 101 || r.Prev != head || r.Hash == ZeroHash {
		t.Fatalf("appended after reopen: %+v", r)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, raw) {
		t.Fatal("reopen changed earlier records")
	}
	if _, err := VerifyChain(after); err != nil {
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

func TestAuditCanonicalHash(t *testing.T) {
	_, raw := auditTestChain(t, 3)
	for _, line := range auditLines(raw) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		i := bytes.LastIndex(line, []byte(`,"hash":"`))
		if i < 0 || len(line)-i != len(`,"hash":"`)+64+2 {
			t.Fatalf("hash is not the last member: %s", line)
		}
		body := append(append([]byte(nil), line[:i]...), '}')
		sum := sha256.Sum256(body)
		var r AuditRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("hash %s is not SHA-256 of the line without it (%x)", r.Hash, sum)
		}
	}
}

func TestAuditTamperDetected(t *testing.T) {
	_, raw := auditTestChain(t, 100)
	lines := auditLines(raw)
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	cut := func(from, to int) [][]byte { return append([][]byte(nil), lines[from:to]...) }

	// One digit of a field in the middle (seq 51 is a sealed record).
	l51 := string(lines[50])
	if !strings.Contains(l51, `"bytes":1050`) {
		t.Fatalf("unexpected test record: %s", l51)
	}
	mod := strings.Replace(l51, `"bytes":1050`, `"bytes":1051`, 1)
	wantBreak(t, "modified field", join(join(cut(0, 50)...), []byte(mod), join(cut(51, 100)...)), 51)

	// Every byte of a middle record, flipped in two ways.
	for i := range lines[49] {
		for _, x := range []byte{0x01, 0x20} {
			l := append([]byte(nil), lines[49]...)
			l[i] ^= x
			wantBreak(t, fmt.Sprintf("byte %d ^ %#x", i, x), join(join(cut(0, 49)...), l, join(cut(50, 100)...)), 50)
		}
	}

	// Removed, swapped, duplicated, first removed.
	wantBreak(t, "removed", join(append(cut(0, 49), cut(50, 100)...)...), 50)
	wantBreak(t, "swapped", join(append(append(cut(0, 49), lines[50], lines[49]), cut(51, 100)...)...), 50)
	wantBreak(t, "duplicated", join(append(append(cut(0, 50), lines[49]), cut(50, 100)...)...), 51)
	wantBreak(t, "first removed", join(cut(1, 100)...), 1)
	wantBreak(t, "last cut short", raw[:len(raw)-1], 100)

	// A forged record inserted after seq 50, with the right prev and its
	// own hash recomputed: it verifies itself, the next record does not.
	forged := AuditRecord{Seq: 51, Event: AuditDeleted, MonoMS: 1, Recording: "0000000000abc005", Count: 3,
		Prev: LineHash(bytes.TrimSuffix(lines[49], []byte("\n")))}
	forged.Hash, _ = auditOwnHash(forged)
	fl, _ := json.Marshal(forged)
	if _, err := ParseAuditLine(fl); err != nil {
		t.Fatalf("forged record should verify on its own: %v", err)
	}
	wantBreak(t, "inserted", join(append(append(cut(0, 50), append(fl, '\n')), cut(50, 100)...)...), 52)

	// A modified record whose own hash was recomputed: the next breaks.
	var r50 AuditRecord
	json.Unmarshal(bytes.TrimSuffix(lines[49], []byte("\n")), &r50)
	r50.Bytes++
	r50.Hash, _ = auditOwnHash(r50)
	ml, _ := json.Marshal(r50)
	wantBreak(t, "rehashed", join(append(append(cut(0, 49), append(ml, '\n')), cut(50, 100)...)...), 51)

	// An unknown field, even with a good hash, and whitespace.
	wantBreak(t, "unknown field", join(append(cut(0, 2), []byte(`{"seq":3,"name":"x"}`+"\n"))...), 3)
	wantBreak(t, "blank line", join(append(cut(0, 2), []byte("\n"))...), 3)
}

func TestVerifyChainFrom(t *testing.T) {
	_, raw := auditTestChain(t, 10)
	lines := auditLines(raw)
	tail := bytes.Join(lines[4:], nil)
	head := LineHash(bytes.TrimSuffix(lines[3], []byte("\n")))
	recs, err := VerifyChainFrom(4, head, tail)
	if err != nil || len(recs) != 6 || recs[0].Seq != 5 {
		t.Fatalf("VerifyChainFrom = %d records, %v", len(recs), err)
	}
	var ce *ChainError
	if _, err := VerifyChainFrom(4, ZeroHash, tail); !errors.As(err, &ce) || ce.Seq != 5 {
		t.Fatalf("wrong head: %v", err)
	}
	if _, err := VerifyChainFrom(5, head, tail); !errors.As(err, &ce) || ce.Seq != 6 {
		t.Fatalf("wrong seq: %v", err)
	}
	if _, err := VerifyChainFrom(0, "nothex", raw); err == nil {
		t.Fatal("bad head accepted")
	}
	if recs, err := VerifyChain(nil); err != nil || len(recs) != 0 {
		t.Fatalf("empty chain: %v %v", recs, err)
	}
}

func TestAuditTornTail(t *testing.T) {
	_, base := auditTestChain(t, 10)
	// The line record 11 would have been.
	next := AuditRecord{Seq: 11, Event: AuditBoot, Prev: LineHash(bytes.TrimSuffix(auditLines(base)[9], []byte("\n")))}
	next.Hash, _ = auditOwnHash(next)
	nextLine, _ := json.Marshal(next)
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
			a, err := OpenAudit(path, newAuditTestClock().now)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			after, _ := os.ReadFile(path)
			if !bytes.HasPrefix(after, base) {
				t.Fatal("earlier records changed")
			}
			recs, err := VerifyChain(after)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 11 {
				t.Fatalf("%d records, want 10 and the recovery note", len(recs))
			}
			sum := sha256.Sum256(tail)
			note := recs[10]
			if note.Event != AuditRecovered || note.Detail != "torn_tail" || note.Bytes != int64(len(tail)) || note.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("recovery note = %+v", note)
			}
			if r, err := a.Append(AuditRecord{Event: AuditBoot}); err != nil || r.Seq != 12 {
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
	var ce *ChainError
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
	a, err := OpenAudit(path, newAuditTestClock().now)
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
				r, err := a.Append(auditTestRecord(w*each + i))
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
	recs, err := VerifyChain(raw)
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
	a, err := OpenAudit(path, newAuditTestClock().now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for name, r := range map[string]AuditRecord{
		"unknown event":   {Event: "smith_family_visit"},
		"no event":        {},
		"free text":       {Event: AuditBoot, Detail: "Visit to J. Smith"},
		"long detail":     {Event: AuditBoot, Detail: strings.Repeat("a", 33)},
		"uppercase":       {Event: AuditBoot, Detail: "Boot"},
		"recording id":    {Event: AuditRecordingStarted, Recording: "Smith"},
		"case label":      {Event: AuditPaired, CaseRef: "Smith family"},
		"sha256 not hex":  {Event: AuditReset, SHA256: strings.Repeat("z", 64)},
		"sha256 short":    {Event: AuditReset, SHA256: "abcd"},
		"negative":        {Event: AuditDeleted, Bytes: -1},
		"negative count":  {Event: AuditDeleted, Count: -1},
		"negative seg":    {Event: AuditAcknowledged, Segments: []int{-1}},
		"too many":        {Event: AuditAcknowledged, Segments: make([]int, MaxAuditLine)},
		"uppercase hexid": {Event: AuditRecordingStarted, Recording: "0123456789ABCDEF"},
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
	if _, err := a.Append(AuditRecord{Event: AuditPaired, CaseRef: AuditCaseRef("Smith family"), SHA256: strings.Repeat("0f", 32)}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("Smith")) {
		t.Fatal("case label in the log")
	}
}

func TestAuditCaseRef(t *testing.T) {
	if got := AuditCaseRef("0123456789abcdef"); got != "0123456789abcdef" {
		t.Fatalf("case id changed: %s", got)
	}
	got := AuditCaseRef("Smith family")
	if !storage.ValidID(got) || got == AuditCaseRef("Jones family") {
		t.Fatalf("AuditCaseRef = %q", got)
	}
	if AuditCaseRef("") != "" {
		t.Fatal("empty ref changed")
	}
}

func TestAuditWallTime(t *testing.T) {
	c := newAuditTestClock()
	c.trusted = false
	a, err := OpenAudit(filepath.Join(t.TempDir(), AuditFile), c.now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := a.Append(AuditRecord{Event: AuditBoot})
	if err != nil {
		t.Fatal(err)
	}
	if r.Wall != "" || r.WallTrusted || r.MonoMS != 250 {
		t.Fatalf("untrusted record: %+v", r)
	}
	if _, ok := r.WallTime(); ok {
		t.Fatal("untrusted wall time returned")
	}
	c.trusted = true
	r, err = a.Append(AuditRecord{Event: AuditClockSet})
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
	if _, err := a.Append(AuditRecord{Event: AuditBoot}); err == nil {
		t.Fatal("append after close")
	}
	if _, _, err := a.Records(0); err == nil {
		t.Fatal("records after close")
	}
}

func auditTestCertificate() Certificate {
	return Certificate{
		Device: "0a1b2c3d4e5f6071", Issued: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), WallTrusted: true,
		AuditSeq: 42, AuditHead: strings.Repeat("1f", 32),
		Recordings: []ErasedRecording{{
			ID: "0123456789abcdef", State: "complete", CaseRef: "00112233aabbccdd",
			Segments: []ErasedSegment{{SHA256: strings.Repeat("aa", 32), Size: 100, Synced: true}, {SHA256: strings.Repeat("bb", 32), Size: 90}},
			Manifest: strings.Repeat("cc", 32),
		}},
	}
}

func TestCertificateSignVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	signed, err := SignCertificate(auditTestCertificate(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyCertificate(signed, pub)
	if err != nil {
		t.Fatal(err)
	}
	want := auditTestCertificate()
	want.Version, want.Key = 1, hex.EncodeToString(pub)
	tlsCert, err := link.SelfSignedCert(key, "attune-test")
	if err != nil {
		t.Fatal(err)
	}
	want.Pin, _ = link.CertPin(tlsCert)
	if c.Pin != want.Pin {
		t.Fatalf("pin %s, want the link's pin %s", c.Pin, want.Pin)
	}
	cj, _ := json.Marshal(c)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(cj, wj) {
		t.Fatalf("verified certificate differs:\n%s\n%s", cj, wj)
	}
	if c2, err := VerifyCertificatePin(signed, want.Pin); err != nil || c2.Device != want.Device {
		t.Fatalf("VerifyCertificatePin: %v", err)
	}
	if !bytes.Contains(signed, []byte(`"type": "`+CertificateType+`"`)) {
		t.Fatalf("not self-describing:\n%s", signed)
	}

	// Any flipped byte, anywhere, fails.
	for i := range signed {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			b := append([]byte(nil), signed...)
			b[i] ^= x
			if _, err := VerifyCertificate(b, pub); err == nil {
				t.Fatalf("byte %d ^ %#x (%q) accepted", i, x, signed[i])
			}
			if _, err := VerifyCertificatePin(b, want.Pin); err == nil {
				t.Fatalf("byte %d ^ %#x (%q) accepted by pin", i, x, signed[i])
			}
		}
	}
	for _, n := range []int{0, 1, len(signed) / 2, len(signed) - 1} {
		if _, err := VerifyCertificate(signed[:n], pub); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}

	// Another key.
	pub2, key2, _ := ed25519.GenerateKey(nil)
	if _, err := VerifyCertificate(signed, pub2); err == nil {
		t.Fatal("wrong key accepted")
	}
	pin2, _ := certPin(pub2)
	if _, err := VerifyCertificatePin(signed, pin2); err == nil {
		t.Fatal("wrong pin accepted")
	}
	// A certificate re-signed by another key, claiming the first key.
	forged := auditTestCertificate()
	forged.Key = hex.EncodeToString(pub)
	if _, err := SignCertificate(forged, key2); err == nil {
		t.Fatal("signed a certificate naming another key")
	}
	other, err := SignCertificate(auditTestCertificate(), key2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCertificatePin(other, want.Pin); err == nil {
		t.Fatal("another device's certificate accepted for this pin")
	}
	bad := auditTestCertificate()
	bad.Recordings[0].ID = "Smith"
	if _, err := SignCertificate(bad, key); err == nil {
		t.Fatal("signed a malformed certificate")
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
	clock := newAuditTestClock()
	a, err := OpenAudit(filepath.Join(t.TempDir(), AuditFile), clock.now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 5 {
		if _, err := a.Append(auditTestRecord(i)); err != nil {
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
	signed, err := SignCertificate(c, key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := store.EraseAll()
	if err != nil || n != 2 {
		t.Fatalf("erase: %d %v", n, err)
	}
	reset, err := a.Append(AuditRecord{Event: AuditReset, Count: n, SHA256: CertificateDigest(signed)})
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

func FuzzVerifyChain(f *testing.F) {
	_, raw := auditTestChain(f, 8)
	f.Add(raw)
	f.Add(auditLines(raw)[0])
	f.Add(raw[:len(raw)-3])
	f.Add(bytes.Replace(raw, []byte(`"seq":3`), []byte(`"seq":4`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := VerifyChain(data)
		lines := bytes.Count(data, []byte("\n"))
		if err != nil {
			var ce *ChainError
			if errors.As(err, &ce) && (ce.Seq < 1 || ce.Seq > uint64(lines)+1 || ce.Seq != uint64(len(recs))+1) {
				t.Fatalf("break at seq %d with %d records verified, %d lines", ce.Seq, len(recs), lines)
			}
			return
		}
		// A chain that verifies is exactly its records, re-encoded.
		var again []byte
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			again = append(append(again, b...), '\n')
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("verified chain is not canonical:\n%q\n%q", data, again)
		}
		if len(recs) > 0 {
			VerifyChainFrom(recs[0].Seq, recs[0].Prev, data)
		}
	})
}

func FuzzVerifyCertificate(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(nil)
	signed, err := SignCertificate(auditTestCertificate(), key)
	if err != nil {
		f.Fatal(err)
	}
	pin, _ := certPin(pub)
	f.Add(signed)
	f.Add([]byte(`{"type":"attune-erasure-certificate-v1","certificate":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err1 := VerifyCertificate(data, pub)
		_, err2 := VerifyCertificatePin(data, pin)
		if (err1 == nil || err2 == nil) && !bytes.Equal(data, signed) {
			t.Fatalf("a document other than the signed one verified:\n%s", data)
		}
	})
}
