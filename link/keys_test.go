package link

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left next to the key: %v", ents)
	}
	b, _ := os.ReadFile(path)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file is not PEM PKCS #8:\n%s", b)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("key changed on reload")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}

	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil {
		t.Error("garbage accepted as a key")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	if _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "not Ed25519") {
		t.Errorf("ECDSA key: %v", err)
	}
	if _, err := LoadOrCreateKey(filepath.Join(dir, "missing-dir", "k")); err == nil {
		t.Error("key created in a missing directory")
	}
}

func TestSelfSignedCert(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c1, err := SelfSignedCert(key, "attune-1a2b")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := SelfSignedCert(key, "attune-1a2b")
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Error("certificate not deterministic")
	}
	leaf := c1.Leaf
	if leaf.PublicKeyAlgorithm != x509.Ed25519 || leaf.SignatureAlgorithm != x509.PureEd25519 {
		t.Errorf("certificate algorithms %v/%v", leaf.PublicKeyAlgorithm, leaf.SignatureAlgorithm)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("certificate may sign others: CA %v, key usage %v", leaf.IsCA, leaf.KeyUsage)
	}
	// Valid whatever the clock says: a Pi boots in 1970.
	for _, at := range []time.Time{time.Unix(0, 0), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
			t.Errorf("certificate not valid at %v", at)
		}
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "attune-1a2b" {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	c3, _ := SelfSignedCert(key, "Sam's laptop")
	if len(c3.Leaf.DNSNames) != 0 {
		t.Errorf("not a host name, yet DNS names %v", c3.Leaf.DNSNames)
	}

	// The pin is SHA-256 of the SubjectPublicKeyInfo, whatever the name.
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	pin := custody.Pin(leaf)
	if pin != hex.EncodeToString(sum[:]) || custody.Pin(c3.Leaf) != pin || !custody.ValidPin(pin) {
		t.Errorf("pin %s", pin)
	}
	if p, err := CertPin(c1); err != nil || p != pin {
		t.Errorf("CertPin %s %v", p, err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c4, _ := SelfSignedCert(other, "attune-1a2b")
	if custody.Pin(c4.Leaf) == pin {
		t.Error("two keys, one pin")
	}
	cp, err := CurlPin(pin)
	if err != nil || cp != "sha256//"+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("CurlPin %q %v", cp, err)
	}
	for _, bad := range []string{"", pin[:63], strings.ToUpper(pin), pin + "0", "g" + pin[1:]} {
		if custody.ValidPin(bad) {
			t.Errorf("custody.ValidPin(%q)", bad)
		}
		if _, err := CurlPin(bad); err == nil {
			t.Errorf("CurlPin(%q) accepted", bad)
		}
	}

	// curl's documented recipe gives the same pin.
	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		crt := filepath.Join(dir, "c.pem")
		os.WriteFile(crt, CertPEM(c1), 0o600)
		out, err := exec.Command("sh", "-c", "openssl x509 -in "+crt+" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64").Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		if got := "sha256//" + strings.TrimSpace(string(out)); got != cp {
			t.Errorf("openssl's pin %s, ours %s", got, cp)
		}
	}
}
