package link_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/gtank/ristretto255"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
)

func TestServeShutsDownAndLeavesNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		n := &linktest.Network{}
		b, err := linktest.NewBackend(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		laptop, pin := newCert(t, "laptop")
		b.SetLaptopPin(pin)
		srv := &link.Server{Backend: b, Key: newKey(t)}
		devPin, _ := srv.Pin()
		ln, _ := n.Listen(deviceAddr)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		c, err := link.NewClient(n, deviceAddr, laptop, devPin)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An idle keep-alive connection and a half-sent request are open
		// when the context ends.
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
		half, err := n.DialContext(context.Background(), "tcp", deviceAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer half.Close()
		tc := tls.Client(half, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		tc.Write([]byte("GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"))
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
		if _, err := c.Status(context.Background()); err == nil {
			t.Error("served after shutdown")
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeReportsListenerFailure(t *testing.T) {
	n := &linktest.Network{}
	b, _ := linktest.NewBackend(t.TempDir())
	ln, _ := n.Listen(deviceAddr)
	ln.Close()
	srv := &link.Server{Backend: b, Key: newKey(t)}
	if err := srv.Serve(context.Background(), ln); err == nil {
		t.Error("Serve on a closed listener returned nil")
	}
	if err := (&link.Server{Backend: b}).Serve(context.Background(), ln); err == nil {
		t.Error("Serve without a key returned nil")
	}
}

// TestPairSpec pairs by the letter of docs/API.md, with the primitives
// only (no code from package link), so the document stays a complete
// description of the protocol.
func TestPairSpec(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("808080")
	var seen []byte
	tr := &http.Transport{
		DialContext:     e.net.DialContext,
		MaxConnsPerHost: 1,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
				if seen != nil && !bytes.Equal(seen, sum[:]) {
					t.Error("device key changed between requests")
				}
				seen = sum[:]
				return nil
			}},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	post := func(path string, in, out any) {
		t.Helper()
		b, _ := json.Marshal(in)
		resp, err := hc.Post("https://"+deviceAddr+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s %s", path, resp.Status, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatal(err)
		}
	}
	lp := func(fields ...[]byte) []byte {
		var out []byte
		for _, f := range fields {
			out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
			out = append(out, f...)
		}
		return out
	}
	// The device's pin is known only after a TLS handshake: make one.
	if resp, err := hc.Get("https://" + deviceAddr + "/api/v1/status"); err == nil {
		resp.Body.Close()
	}
	label := []byte("attune-pair-v1")
	// CPace-RISTR255-SHA512 (draft-irtf-cfrg-cpace) as API.md gives it:
	// lv_cat with one-byte lengths (every field here is under 128 bytes).
	lv := func(fields ...[]byte) []byte {
		var out []byte
		for _, f := range fields {
			out = append(append(out, byte(len(f))), f...)
		}
		return out
	}
	ci := lv([]byte("attune-laptop"), []byte("attune-device"), lp(label, seen))
	sid := make([]byte, 16)
	rand.Read(sid)
	prs, dsi := []byte("808080"), []byte("CPaceRistretto255")
	genHash := sha512.Sum512(lv(dsi, prs, make([]byte, 128-1-len(prs)-1-len(dsi)-1), ci, sid))
	g := ristretto255.NewElement().FromUniformBytes(genHash[:])
	var yBytes [64]byte
	rand.Read(yBytes[:])
	y := ristretto255.NewScalar().FromUniformBytes(yBytes[:])
	ya := ristretto255.NewElement().ScalarMult(y, g).Encode(nil)
	msgA := append(append([]byte(nil), sid...), ya...)
	var sr struct {
		Session []byte `json:"session"`
		MsgB    []byte `json:"msg_b"`
	}
	post("/pair/start", map[string][]byte{"msg_a": msgA}, &sr)
	yb := ristretto255.NewElement()
	if err := yb.Decode(sr.MsgB); err != nil {
		t.Fatal(err)
	}
	kISK := sha512.New()
	kISK.Write(lv([]byte("CPaceRistretto255_ISK"), sid, ristretto255.NewElement().ScalarMult(y, yb).Encode(nil)))
	kISK.Write(lv(ya, nil))
	kISK.Write(lv(sr.MsgB, nil))
	k := kISK.Sum(nil)
	h1 := sha256.Sum256(lp(label, seen, sr.Session, msgA, sr.MsgB))
	prk := hkdf.Extract(sha256.New, k, h1[:])
	kc, ke := make([]byte, 32), make([]byte, 32)
	io.ReadFull(hkdf.Expand(sha256.New, prk, []byte("attune-pair-v1 confirm")), kc)
	io.ReadFull(hkdf.Expand(sha256.New, prk, []byte("attune-pair-v1 seal")), ke)
	mac := func(role string, h []byte) []byte {
		m := hmac.New(sha256.New, kc)
		m.Write([]byte(role))
		m.Write(h)
		return m.Sum(nil)
	}
	aead, _ := chacha20poly1305.New(ke)
	nonce := func(last byte) []byte { n := make([]byte, 12); n[11] = last; return n }
	payload, _ := json.Marshal(map[string]any{
		"laptop_cert_pin": e.laptopPin, "recipients": []string{e.rcpt}, "case_ref": "spec", "now": "2026-04-01T08:00:00Z",
	})
	confirmL := mac("laptop", h1[:])
	sealedL := aead.Seal(nil, nonce(1), payload, append([]byte("laptop"), h1[:]...))
	var fr struct {
		Confirm []byte `json:"confirm"`
		Sealed  []byte `json:"sealed"`
	}
	post("/pair/finish", map[string][]byte{"session": sr.Session, "confirm": confirmL, "sealed": sealedL}, &fr)
	h2 := sha256.Sum256(append(append(append([]byte{}, h1[:]...), confirmL...), sealedL...))
	if !hmac.Equal(fr.Confirm, mac("device", h2[:])) {
		t.Fatal("device confirmation differs from the document")
	}
	plain, err := aead.Open(nil, nonce(2), fr.Sealed, append([]byte("device"), h2[:]...))
	if err != nil {
		t.Fatalf("device payload does not open as documented: %v", err)
	}
	var dev struct {
		DeviceCertPin string `json:"device_cert_pin"`
		DeviceID      string `json:"device_id"`
		ClockSet      bool   `json:"clock_set"`
	}
	if err := json.Unmarshal(plain, &dev); err != nil || dev.DeviceCertPin != e.devPin || !dev.ClockSet || dev.DeviceID == "" {
		t.Fatalf("device payload %s", plain)
	}
	if e.b.LaptopPin() != e.laptopPin || e.b.Case().Ref != "spec" {
		t.Fatal("device did not take the payload")
	}
}
