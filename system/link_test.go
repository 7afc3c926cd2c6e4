package system

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"filippo.io/age"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// testLaptop is a laptop's TLS certificate and one case of it.
type testLaptop struct {
	cert tls.Certificate
	pin  string
	kase link.Case
}

func newTestLaptop(t *testing.T, ref string) testLaptop {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := link.SelfSignedCert(key, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	c, err := link.NewCase([]string{id.Recipient().String()}, ref)
	if err != nil {
		t.Fatal(err)
	}
	return testLaptop{cert: cert, pin: custody.Pin(cert.Leaf), kase: c}
}

// ack posts an acknowledgement of every segment and the manifest of ix as
// laptop l would, and returns the status code.
func ack(t *testing.T, srv *link.Server, l testLaptop, ix *storage.Index) int {
	t.Helper()
	segs := make([]string, len(ix.Segments))
	for i := range segs {
		segs[i] = fmt.Sprint(i)
	}
	body := `{"segments":[` + strings.Join(segs, ",") + `],"manifest":true}`
	req := httptest.NewRequest(http.MethodPost, "/api/v1/recordings/"+ix.ID+"/ack", strings.NewReader(body))
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{l.cert.Leaf}}
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	return w.Code
}

// TestAckRefusedForOtherCase: a laptop paired for case B (say the pairing
// was taken over) cannot acknowledge, and so delete, a recording sealed for
// case A; the laptop that paired case A still can, also after it started
// another case.
func TestAckRefusedForOtherCase(t *testing.T) {
	td := newTestDaemon(t)
	dir := t.TempDir()
	b := &linkBackend{d: td.d, data: dir}
	_, devKey, _ := ed25519.GenerateKey(rand.Reader)
	srv := &link.Server{Backend: b, Key: devKey}

	a := newTestLaptop(t, "0123456789abcdef")
	if err := b.Paired(link.Pairing{LaptopPin: a.pin, Case: a.kase}); err != nil {
		t.Fatal(err)
	}
	id := td.recordOne(t)
	ix, err := td.store.Index(id)
	if err != nil {
		t.Fatal(err)
	}
	if ix.CaseRef != a.kase.Ref {
		t.Fatalf("recording sealed for case %q, want %q", ix.CaseRef, a.kase.Ref)
	}

	// Another laptop holds the pairing, for its own case.
	other := newTestLaptop(t, "fedcba9876543210")
	b.mu.Lock()
	b.state = pairingState{LaptopPin: other.pin, Recipients: other.kase.Recipients, CaseRef: other.kase.Ref, Cases: []string{other.kase.Ref}}
	b.mu.Unlock()
	if code := ack(t, srv, other, ix); code != http.StatusConflict {
		t.Fatalf("ack of another case's recording: %d, want 409", code)
	}
	now, err := td.store.Index(id)
	if err != nil {
		t.Fatalf("the recording is gone after a refused ack: %v", err)
	}
	for i, s := range now.Segments {
		if s.Acked {
			t.Fatalf("segment %d marked acknowledged by a refused ack", i)
		}
		if _, err := os.Stat(td.store.SegmentPath(id, i)); err != nil {
			t.Fatalf("segment %d deleted by a refused ack: %v", i, err)
		}
	}
	// Its own audit: the refused ack is no acknowledgement on the device.
	if _, err := (auditedStore{td.store, b}).Ack(id, []int{0}, false); err == nil {
		t.Fatal("backend store acknowledged another case's recording")
	}

	// Laptop A again (a pairing from before Cases existed knows only its
	// current case), then a new case of its own: case A stays its own.
	b.mu.Lock()
	b.state = pairingState{LaptopPin: a.pin, Recipients: a.kase.Recipients, CaseRef: a.kase.Ref}
	b.mu.Unlock()
	next := newTestLaptop(t, "00000000000000aa").kase
	if err := b.SetRecipients(next); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(dir + "/" + pairingFile)
	var saved pairingState
	if err := json.Unmarshal(raw, &saved); err != nil || len(saved.Cases) != 2 {
		t.Fatalf("saved pairing %s: %v", raw, err)
	}
	if code := ack(t, srv, a, ix); code != http.StatusOK {
		t.Fatalf("ack by the laptop of the recording's case: %d, want 200", code)
	}
	if _, err := td.store.Index(id); err == nil {
		t.Fatal("a fully acknowledged recording is still on the device")
	}
}

// TestPairedRefusedWithUnsynced: even with a window open, a pairing is
// refused while unsynced footage is on the device, and the old pairing
// stays.
func TestPairedRefusedWithUnsynced(t *testing.T) {
	td := newTestDaemon(t)
	b := &linkBackend{d: td.d, data: t.TempDir()}
	a := newTestLaptop(t, "0123456789abcdef")
	if err := b.Paired(link.Pairing{LaptopPin: a.pin, Case: a.kase}); err != nil {
		t.Fatal(err)
	}
	td.recordOne(t)
	other := newTestLaptop(t, "fedcba9876543210")
	if err := b.Paired(link.Pairing{LaptopPin: other.pin, Case: other.kase}); err == nil {
		t.Fatal("a second laptop paired while unsynced footage is on the device")
	}
	if b.LaptopPin() != a.pin {
		t.Fatal("the refused pairing replaced the paired laptop")
	}
	if r, _ := td.d.Recipients(); r.CaseRef != a.kase.Ref {
		t.Fatalf("recordings would be sealed for case %q after a refused pairing", r.CaseRef)
	}
}

// TestFactoryResetKeepsOnlyResetRecord: after a factory reset the audit
// log holds only the reset record — the next laptop learns nothing of the
// erased cases' recordings — anchored where the certificate says the chain
// stood, and the log goes on from there, also after a restart.
func TestFactoryResetKeepsOnlyResetRecord(t *testing.T) {
	td := newTestDaemon(t)
	dir := t.TempDir()
	path := dir + "/" + AuditFile
	chain, err := OpenAudit(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { chain.Close() }()
	b := &linkBackend{d: td.d, data: dir, chain: chain, rotated: make(chan struct{}, 1)}
	_, devKey, _ := ed25519.GenerateKey(rand.Reader)
	b.setKey(devKey, "0a1b2c3d4e5f6071")
	a := newTestLaptop(t, "0123456789abcdef")
	if err := b.Paired(link.Pairing{LaptopPin: a.pin, Case: a.kase}); err != nil {
		t.Fatal(err)
	}
	id := td.recordOne(t)
	note(chain, nil, custody.Record{Event: custody.EventRecordingStarted, Recording: id, CaseRef: a.kase.Ref})
	note(chain, nil, custody.Record{Event: custody.EventRecordingSealed, Recording: id, Count: 3, Bytes: 999})
	before, _ := os.ReadFile(path)

	signed, err := b.factoryReset(true, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := custody.VerifyCertificate(signed, devKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), id) || strings.Count(string(raw), "\n") != 1 {
		t.Fatalf("audit log after the reset:\n%s\nwant only the reset record (before it held %d records)", raw, strings.Count(string(before), "\n"))
	}
	recs, served, err := chain.Records(0)
	if err != nil || len(recs) != 1 || string(served) != string(raw) {
		t.Fatalf("records served after the reset: %v %v", recs, err)
	}
	r := recs[0]
	if r.Event != custody.EventReset || r.Seq != cert.AuditSeq+1 || r.Prev != cert.AuditHead || r.SHA256 != custody.CertificateDigest(signed) {
		t.Fatalf("reset record %+v does not anchor on the certificate (seq %d, head %s)", r, cert.AuditSeq, cert.AuditHead)
	}
	if seq, head := chain.Head(); seq != r.Seq || head != custody.LineHash([]byte(strings.TrimSuffix(string(raw), "\n"))) {
		t.Fatalf("head after compaction: %d %s", seq, head)
	}
	// The log goes on after the reset record, and reopens.
	next, err := chain.Append(custody.Record{Event: custody.EventBoot})
	if err != nil || next.Seq != r.Seq+1 {
		t.Fatalf("append after the reset: %+v %v", next, err)
	}
	chain.Close()
	chain, err = OpenAudit(path, nil)
	if err != nil {
		t.Fatalf("reopen after the reset: %v", err)
	}
	if seq, _ := chain.Head(); seq != next.Seq {
		t.Fatalf("seq after reopen %d, want %d", seq, next.Seq)
	}
	if recs, _, err := chain.Records(r.Seq); err != nil || len(recs) != 1 || recs[0].Seq != next.Seq {
		t.Fatalf("records after the reset record: %v %v", recs, err)
	}
	// Only a reset record is kept alone.
	if err := chain.Compact(); err == nil {
		t.Fatal("Compact after a boot record succeeded")
	}
}
