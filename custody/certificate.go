package custody

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// CertificateType is the type of a signed erasure certificate.
//
// A factory reset lists what it is about to erase (on the device,
// system.BuildCertificate), signs the list with the device's Ed25519 key
// (the key of its TLS certificate, which the laptop pinned at pairing),
// erases, and appends a reset record whose sha256 is the SHA-256 of the
// signed document. The document is JSON:
//
//	{
//	  "type": "attune-erasure-certificate-v1",
//	  "certificate": { …Certificate, indented… },
//	  "signature_scheme": "…",
//	  "signature": "<base64 (standard, padded) of 64 bytes>"
//	}
//
// The signature is Ed25519 over the ASCII string
// "attune erasure certificate v1", a zero byte, and then the exact bytes of
// the "certificate" value as they stand in the document. The prefix keeps
// a certificate signature from ever being mistaken for any other use of
// the same key (TLS). The layout is fixed: a verifier rebuilds the
// document from its parts and compares bytes.
const CertificateType = "attune-erasure-certificate-v1"

const (
	certContext = "attune erasure certificate v1\x00"
	certScheme  = `Ed25519 over "attune erasure certificate v1", a zero byte, and the exact bytes of the certificate value`
)

// Certificate is what a factory reset erased.
type Certificate struct {
	Version int `json:"version"`
	// Device is the device id.
	Device string `json:"device"`
	// Issued is the device's wall time; WallTrusted says whether the paired
	// laptop had set the clock.
	Issued      time.Time `json:"issued"`
	WallTrusted bool      `json:"wall_trusted"`
	// AuditSeq and AuditHead are the last record of the audit chain before
	// the reset: its seq and its line hash (the prev of the reset record).
	AuditSeq  uint64 `json:"audit_seq"`
	AuditHead string `json:"audit_head"`
	// Recordings are the recordings still on the device when it was reset.
	// Recordings fully acknowledged earlier were deleted then (audit
	// records "deleted") and are not listed.
	Recordings []ErasedRecording `json:"recordings"`
	// OtherEntries counts other entries of the recordings directory that
	// were removed (temporary files).
	OtherEntries int `json:"other_entries"`
	// Key is the device's Ed25519 public key (hex) and Pin its pin as the
	// laptop pinned it (SHA-256 of the SubjectPublicKeyInfo, hex).
	// SignCertificate fills both.
	Key string `json:"key"`
	Pin string `json:"pin"`
}

// ErasedRecording is one erased recording, described by its ciphertext.
type ErasedRecording struct {
	ID string `json:"id"`
	// State is "complete", "interrupted", "recording", or "unreadable"
	// (index damaged: the files were erased but cannot be listed).
	State   string `json:"state"`
	CaseRef string `json:"case_ref,omitempty"`
	// Segments in order: ciphertext hash and size, and whether the laptop
	// had acknowledged it (synced) before the reset.
	Segments []ErasedSegment `json:"segments"`
	// Manifest is the SHA-256 of the sealed manifest's ciphertext.
	Manifest       string `json:"manifest,omitempty"`
	ManifestSynced bool   `json:"manifest_synced"`
	// Complete: every segment and the manifest had reached the laptop, so
	// the erasure lost nothing.
	Complete bool `json:"complete"`
}

// ErasedSegment is one segment of an erased recording.
type ErasedSegment struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Synced bool   `json:"synced"`
}

var certDeviceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Check checks that c is well formed: a known version, the device id,
// the chain head, recording ids, states, case references and hashes each in
// its alphabet. SignCertificate and the verifiers check it; a device checks
// a certificate it builds before it signs it.
func (c *Certificate) Check() error {
	if c.Version != 1 {
		return fmt.Errorf("unsupported version %d", c.Version)
	}
	if !certDeviceRE.MatchString(c.Device) {
		return errors.New("device must be an id ([A-Za-z0-9_-]{1,64})")
	}
	if !isHex64(c.AuditHead) {
		return errors.New("audit_head must be 64 lowercase hex digits")
	}
	if c.OtherEntries < 0 {
		return errors.New("negative other_entries")
	}
	for _, r := range c.Recordings {
		if !ValidID(r.ID) {
			return errors.New("bad recording id")
		}
		switch r.State {
		// The states of a recording's index (storage.State), or
		// "unreadable".
		case "complete", "interrupted", "recording", "unreadable":
		default:
			return fmt.Errorf("recording %s: bad state", r.ID)
		}
		if r.CaseRef != "" && !ValidID(r.CaseRef) {
			return fmt.Errorf("recording %s: case_ref must be an opaque case id", r.ID)
		}
		if r.Manifest != "" && !isHex64(r.Manifest) {
			return fmt.Errorf("recording %s: bad manifest hash", r.ID)
		}
		for i, s := range r.Segments {
			if !isHex64(s.SHA256) || s.Size < 0 {
				return fmt.Errorf("recording %s: bad segment %d", r.ID, i)
			}
		}
	}
	return nil
}

// certDocument lays out the signed document.
func certDocument(cert []byte, sig []byte) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"type\": \"" + CertificateType + "\",\n  \"certificate\": ")
	b.Write(cert)
	s, _ := json.Marshal(certScheme)
	b.WriteString(",\n  \"signature_scheme\": ")
	b.Write(s)
	b.WriteString(",\n  \"signature\": \"")
	b.WriteString(base64.StdEncoding.EncodeToString(sig))
	b.WriteString("\"\n}\n")
	return b.Bytes()
}

func certEncode(c Certificate) ([]byte, error) {
	return json.MarshalIndent(c, "  ", "  ")
}

// SignCertificate signs c with the device key and returns the signed
// document. It fills c's Key and Pin from key (and refuses a c that names
// another key) and sets Version 1 if it is unset.
func SignCertificate(c Certificate, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("sign certificate: not an Ed25519 private key")
	}
	pub := key.Public().(ed25519.PublicKey)
	pin, err := PinOf(pub)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %v", err)
	}
	if c.Key != "" && c.Key != hex.EncodeToString(pub) || c.Pin != "" && c.Pin != pin {
		return nil, errors.New("sign certificate: the certificate names another key")
	}
	c.Key, c.Pin = hex.EncodeToString(pub), pin
	if c.Version == 0 {
		c.Version = 1
	}
	c.Recordings = append([]ErasedRecording{}, c.Recordings...) // not the caller's array
	for i := range c.Recordings {
		if c.Recordings[i].Segments == nil {
			c.Recordings[i].Segments = []ErasedSegment{}
		}
	}
	c.Issued = c.Issued.UTC().Round(0)
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("sign certificate: %v", err)
	}
	body, err := certEncode(c)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %v", err)
	}
	sig := ed25519.Sign(key, append([]byte(certContext), body...))
	return certDocument(body, sig), nil
}

// parseCertificate takes a signed document apart and checks its layout and
// the certificate's encoding, without checking the signature.
func parseCertificate(signed []byte) (c Certificate, body, sig []byte, err error) {
	var doc struct {
		Type        string          `json:"type"`
		Certificate json.RawMessage `json:"certificate"`
		Scheme      string          `json:"signature_scheme"`
		Signature   string          `json:"signature"`
	}
	dec := json.NewDecoder(bytes.NewReader(signed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return c, nil, nil, fmt.Errorf("not a signed certificate: %v", err)
	}
	if doc.Type != CertificateType {
		return c, nil, nil, fmt.Errorf("not an %s document", CertificateType)
	}
	sig, err = base64.StdEncoding.Strict().DecodeString(doc.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, nil, nil, errors.New("malformed signature")
	}
	if !bytes.Equal(certDocument(doc.Certificate, sig), signed) {
		return c, nil, nil, errors.New("document altered (layout)")
	}
	cd := json.NewDecoder(bytes.NewReader(doc.Certificate))
	cd.DisallowUnknownFields()
	if err := cd.Decode(&c); err != nil {
		return c, nil, nil, fmt.Errorf("malformed certificate: %v", err)
	}
	if enc, err := certEncode(c); err != nil || !bytes.Equal(enc, doc.Certificate) {
		return c, nil, nil, errors.New("certificate altered (not in canonical form)")
	}
	if err := c.Check(); err != nil {
		return c, nil, nil, fmt.Errorf("malformed certificate: %v", err)
	}
	return c, doc.Certificate, sig, nil
}

// VerifyCertificate checks a signed certificate against the device's public
// key and returns it. Any change to the document fails.
func VerifyCertificate(signed []byte, pub ed25519.PublicKey) (Certificate, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Certificate{}, errors.New("verify certificate: not an Ed25519 public key")
	}
	c, body, sig, err := parseCertificate(signed)
	if err != nil {
		return Certificate{}, fmt.Errorf("verify certificate: %v", err)
	}
	if !ed25519.Verify(pub, append([]byte(certContext), body...), sig) {
		return Certificate{}, errors.New("verify certificate: signature does not verify (altered, or signed by another device)")
	}
	pin, err := PinOf(pub)
	if err != nil || c.Key != hex.EncodeToString(pub) || c.Pin != pin {
		return Certificate{}, errors.New("verify certificate: the certificate names another key")
	}
	return c, nil
}

// VerifyCertificatePin checks a signed certificate against the pin of the
// device (Pin) and returns it.
func VerifyCertificatePin(signed []byte, pin string) (Certificate, error) {
	c, _, _, err := parseCertificate(signed)
	if err != nil {
		return Certificate{}, fmt.Errorf("verify certificate: %v", err)
	}
	pub, err := hex.DecodeString(c.Key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return Certificate{}, errors.New("verify certificate: malformed key")
	}
	got, err := PinOf(pub)
	if err != nil || got != pin {
		return Certificate{}, errors.New("verify certificate: signed by a key other than the paired device's")
	}
	return VerifyCertificate(signed, pub)
}

// CertificateDigest is the sha256 of the reset record: the SHA-256 of the
// signed document, in hex.
func CertificateDigest(signed []byte) string {
	sum := sha256.Sum256(signed)
	return hex.EncodeToString(sum[:])
}
