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
