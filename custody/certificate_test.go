package custody_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
)

func auditTestCertificate() custody.Certificate {
	return custody.Certificate{
		Device: "0a1b2c3d4e5f6071", Issued: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), WallTrusted: true,
		AuditSeq: 42, AuditHead: strings.Repeat("1f", 32),
		Recordings: []custody.ErasedRecording{{
			ID: "0123456789abcdef", State: "complete", CaseRef: "00112233aabbccdd",
			Segments: []custody.ErasedSegment{{SHA256: strings.Repeat("aa", 32), Size: 100, Synced: true}, {SHA256: strings.Repeat("bb", 32), Size: 90}},
			Manifest: strings.Repeat("cc", 32),
		}},
	}
}

func TestCertificateSignVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	signed, err := custody.SignCertificate(auditTestCertificate(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := custody.VerifyCertificate(signed, pub)
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
	if c2, err := custody.VerifyCertificatePin(signed, want.Pin); err != nil || c2.Device != want.Device {
		t.Fatalf("VerifyCertificatePin: %v", err)
	}
	if !bytes.Contains(signed, []byte(`"type": "`+custody.CertificateType+`"`)) {
		t.Fatalf("not self-describing:\n%s", signed)
	}

	// Any flipped byte, anywhere, fails.
	for i := range signed {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			b := append([]byte(nil), signed...)
			b[i] ^= x
			if _, err := custody.VerifyCertificate(b, pub); err == nil {
				t.Fatalf("byte %d ^ %#x (%q) accepted", i, x, signed[i])
			}
			if _, err := custody.VerifyCertificatePin(b, want.Pin); err == nil {
				t.Fatalf("byte %d ^ %#x (%q) accepted by pin", i, x, signed[i])
			}
		}
	}
	for _, n := range []int{0, 1, len(signed) / 2, len(signed) - 1} {
		if _, err := custody.VerifyCertificate(signed[:n], pub); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}

	// Another key.
	pub2, key2, _ := ed25519.GenerateKey(nil)
	if _, err := custody.VerifyCertificate(signed, pub2); err == nil {
		t.Fatal("wrong key accepted")
	}
	pin2, _ := custody.PinOf(pub2)
	if _, err := custody.VerifyCertificatePin(signed, pin2); err == nil {
		t.Fatal("wrong pin accepted")
	}
	// A certificate re-signed by another key, claiming the first key.
	forged := auditTestCertificate()
	forged.Key = hex.EncodeToString(pub)
	if _, err := custody.SignCertificate(forged, key2); err == nil {
		t.Fatal("signed a certificate naming another key")
	}
	other, err := custody.SignCertificate(auditTestCertificate(), key2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := custody.VerifyCertificatePin(other, want.Pin); err == nil {
		t.Fatal("another device's certificate accepted for this pin")
	}
	bad := auditTestCertificate()
	bad.Recordings[0].ID = "Smith"
	if _, err := custody.SignCertificate(bad, key); err == nil {
		t.Fatal("signed a malformed certificate")
	}
}

func FuzzVerifyCertificate(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(nil)
	signed, err := custody.SignCertificate(auditTestCertificate(), key)
	if err != nil {
		f.Fatal(err)
	}
	pin, _ := custody.PinOf(pub)
	f.Add(signed)
	f.Add([]byte(`{"type":"attune-erasure-certificate-v1","certificate":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err1 := custody.VerifyCertificate(data, pub)
		_, err2 := custody.VerifyCertificatePin(data, pin)
		if (err1 == nil || err2 == nil) && !bytes.Equal(data, signed) {
			t.Fatalf("a document other than the signed one verified:\n%s", data)
		}
	})
}
