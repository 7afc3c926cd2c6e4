package custody

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
)

// Pin is the pin of a certificate: the SHA-256 of its SubjectPublicKeyInfo,
// in lowercase hex. It names the key, not the certificate, so it survives
// re-issuing the certificate for the same key. The laptop pins the device's
// key this way at pairing, the device the laptop's, and an erasure
// certificate names its signer by the same pin.
func Pin(cert *x509.Certificate) string {
	return spkiPin(cert.RawSubjectPublicKeyInfo)
}

// PinOf is the pin of an Ed25519 public key: Pin of any certificate for
// that key.
func PinOf(pub ed25519.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return spkiPin(spki), nil
}

func spkiPin(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// ValidPin reports whether pin is a pin as Pin writes it: 64 lowercase hex
// digits.
func ValidPin(pin string) bool { return isHex64(pin) }
