package link

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// LoadOrCreateKey reads the Ed25519 private key at path (PEM, PKCS #8), or
// creates one there if the file does not exist. A new key is written
// atomically (temporary name, fsync, rename, fsync of the directory) with
// mode 0600. A key file readable by group or others is refused.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load key: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %v", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load key: %s is readable by others (mode %04o): run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	key, err := ParseKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %v", path, err)
	}
	return key, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create key: %v", err)
	}
	b, err := KeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("create key: %v", err)
	}
	if err := storage.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("create key: %v", err)
	}
	return key, nil
}

// KeyPEM encodes key as a PEM "PRIVATE KEY" block (PKCS #8), the form curl
// and openssl read.
func KeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM decodes an Ed25519 private key written by KeyPEM.
func ParseKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, not Ed25519", k)
	}
	return key, nil
}

// CertPEM encodes the leaf certificate of c as a PEM "CERTIFICATE" block.
func CertPEM(c tls.Certificate) []byte {
	if len(c.Certificate) == 0 {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
}

// Certificates are valid from notBefore to notAfter whatever the clock says:
// the Pi boots in 1970, and trust comes from the pin, not from dates.
var (
	notBefore = time.Unix(0, 0).UTC()
	notAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) // RFC 5280: no expiry
)

// SelfSignedCert returns a self-signed X.509 certificate for key, usable
// for TLS as server and as client. It is deterministic: the same key and
// name give the same certificate (Ed25519 signatures are deterministic and
// the serial number is derived from the key), so it need not be stored.
// commonName also goes in the DNS subject alternative names when it is a
// valid host name, so `curl --cacert` can check it with --connect-to.
func SelfSignedCert(key ed25519.PrivateKey, commonName string) (tls.Certificate, error) {
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(append([]byte("attune cert serial\x00"), pub...))
	serial := new(big.Int).SetBytes(sum[:16])
	serial.SetBit(serial, 127, 0) // positive, at most 16 bytes
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, // CA:FALSE; OpenSSL still takes it as its own anchor (curl --cacert)
	}
	if validHostname(commonName) {
		tmpl.DNSNames = []string{commonName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("self-signed certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			label++
		case c == '-' && label > 0 && i+1 < len(s) && s[i+1] != '.':
			label++
		case c == '.' && label > 0:
			label = 0
			continue
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return label > 0
}

// PinSize is the length in bytes of a pin (a SHA-256 hash).
const PinSize = sha256.Size

// CertPin is the pin of the leaf of c (custody.Pin).
func CertPin(c tls.Certificate) (string, error) {
	if c.Leaf != nil {
		return custody.Pin(c.Leaf), nil
	}
	if len(c.Certificate) == 0 {
		return "", errors.New("pin: no certificate")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return "", fmt.Errorf("pin: %v", err)
	}
	return custody.Pin(leaf), nil
}

// CurlPin converts a hex pin into curl's --pinnedpubkey form,
// "sha256//" followed by the base64 of the same hash.
func CurlPin(pin string) (string, error) {
	b, err := pinBytes(pin)
	if err != nil {
		return "", err
	}
	return "sha256//" + base64.StdEncoding.EncodeToString(b), nil
}

func pinBytes(pin string) ([]byte, error) {
	if len(pin) != 2*PinSize {
		return nil, errors.New("pin: not 64 hex digits")
	}
	if !custody.ValidPin(pin) {
		return nil, errors.New("pin: not 64 lowercase hex digits")
	}
	return hex.DecodeString(pin)
}
