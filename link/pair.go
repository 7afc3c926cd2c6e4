package link

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/hkdf"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// The pairing protocol, version 1. docs/API.md describes it byte by byte;
// keep the two in step.
const (
	pairLabel     = "attune-pair-v1"
	cpaceIDLaptop = "attune-laptop"
	cpaceIDDevice = "attune-device"
	labelConfirm  = "attune-pair-v1 confirm"
	labelSeal     = "attune-pair-v1 seal"
	roleLaptop    = "laptop"
	roleDevice    = "device"

	msgASize    = 16 + 32 // CPace: salt and a ristretto255 element
	msgBSize    = 32
	sessionSize = 16
	confirmSize = sha256.Size
	// maxSealed bounds a sealed payload (a few post-quantum recipients are
	// about 2 KB each).
	maxSealed = 48 << 10
)

// Limits of one pairing window.
const (
	// MaxWrongCodes wrong codes close the window.
	MaxWrongCodes = 5
	// MaxStarts pairing attempts (right or wrong) are allowed per window.
	MaxStarts = 50
	// MaxRecipients is the most recipients one case may have.
	MaxRecipients = 20
	// maxCaseRef bounds the opaque case reference.
	maxCaseRef = 256
	// maxBody bounds every JSON request body.
	maxBody = 64 << 10
)

// pairAD is the CPace additional data: the protocol label and the device's
// certificate pin (raw bytes) as this side knows it. The laptop uses the
// pin it saw in the TLS handshake, the device its own; a machine in the
// middle with another certificate makes the two derive different keys.
func pairAD(devicePin []byte) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(pairLabel)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(devicePin) })
	return b.BytesOrPanic()
}

// transcriptHash is h1 = SHA-256(label ‖ pin ‖ session ‖ msg_a ‖ msg_b),
// each field with a 16-bit big-endian length prefix.
func transcriptHash(devicePin, session, msgA, msgB []byte) []byte {
	b := cryptobyte.NewBuilder(nil)
	for _, f := range [][]byte{[]byte(pairLabel), devicePin, session, msgA, msgB} {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f) })
	}
	sum := sha256.Sum256(b.BytesOrPanic())
	return sum[:]
}

// pairKeys are the keys derived from the CPace key and the transcript.
type pairKeys struct {
	h1      []byte // transcript hash
	confirm []byte // HMAC key for both confirmations
	aead    []byte // ChaCha20-Poly1305 key for both payloads
}

func deriveKeys(cpaceKey, h1 []byte) pairKeys {
	prk := hkdf.Extract(sha256.New, cpaceKey, h1)
	k := pairKeys{h1: h1, confirm: make([]byte, 32), aead: make([]byte, chacha20poly1305.KeySize)}
	io.ReadFull(hkdf.Expand(sha256.New, prk, []byte(labelConfirm)), k.confirm)
	io.ReadFull(hkdf.Expand(sha256.New, prk, []byte(labelSeal)), k.aead)
	return k
}

func (k pairKeys) mac(role string, h []byte) []byte {
	m := hmac.New(sha256.New, k.confirm)
	m.Write([]byte(role))
	m.Write(h)
	return m.Sum(nil)
}

// nonce is 11 zero bytes and 1 for the laptop's payload, 2 for the device's.
// Each key seals exactly these two messages.
func nonce(role string) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	if role == roleLaptop {
		n[len(n)-1] = 1
	} else {
		n[len(n)-1] = 2
	}
	return n
}

func (k pairKeys) seal(role string, h, plaintext []byte) []byte {
	a, _ := chacha20poly1305.New(k.aead)
	return a.Seal(nil, nonce(role), plaintext, append([]byte(role), h...))
}

func (k pairKeys) open(role string, h, sealed []byte) ([]byte, error) {
	a, _ := chacha20poly1305.New(k.aead)
	return a.Open(nil, nonce(role), sealed, append([]byte(role), h...))
}

// laptopConfirm is confirm_L = HMAC(kc, "laptop" ‖ h1).
func (k pairKeys) laptopConfirm() []byte { return k.mac(roleLaptop, k.h1) }

// h2 = SHA-256(h1 ‖ confirm_L ‖ sealed_L): the device's answer covers what
// it received.
func (k pairKeys) h2(confirmL, sealedL []byte) []byte {
	h := sha256.New()
	h.Write(k.h1)
	h.Write(confirmL)
	h.Write(sealedL)
	return h.Sum(nil)
}

// Wire messages. []byte fields are base64 (standard, padded) in JSON.

type startRequest struct {
	MsgA []byte `json:"msg_a"`
}

type startResponse struct {
	Session []byte `json:"session"`
	MsgB    []byte `json:"msg_b"`
}

type finishRequest struct {
	Session []byte `json:"session"`
	Confirm []byte `json:"confirm"`
	Sealed  []byte `json:"sealed"`
}

type finishResponse struct {
	Confirm []byte `json:"confirm"`
	Sealed  []byte `json:"sealed"`
}

// laptopWire is the laptop's sealed payload.
type laptopWire struct {
	LaptopCertPin string   `json:"laptop_cert_pin"`
	Recipients    []string `json:"recipients"`
	CaseRef       string   `json:"case_ref"`
	Now           string   `json:"now"`
}

// deviceWire is the device's sealed payload.
type deviceWire struct {
	DeviceCertPin string `json:"device_cert_pin"`
	DeviceID      string `json:"device_id"`
	ClockSet      bool   `json:"clock_set"`
}

func parseStartRequest(r io.Reader) (startRequest, error) {
	var m startRequest
	if err := decodeJSON(r, &m); err != nil {
		return m, err
	}
	if len(m.MsgA) != msgASize {
		return m, fmt.Errorf("msg_a must be %d bytes", msgASize)
	}
	return m, nil
}

func parseFinishRequest(r io.Reader) (finishRequest, error) {
	var m finishRequest
	if err := decodeJSON(r, &m); err != nil {
		return m, err
	}
	switch {
	case len(m.Session) != sessionSize:
		return m, fmt.Errorf("session must be %d bytes", sessionSize)
	case len(m.Confirm) != confirmSize:
		return m, fmt.Errorf("confirm must be %d bytes", confirmSize)
	case len(m.Sealed) < chacha20poly1305.Overhead || len(m.Sealed) > maxSealed:
		return m, errors.New("sealed has a bad size")
	}
	return m, nil
}

func parseStartResponse(r io.Reader) (startResponse, error) {
	var m startResponse
	if err := decodeJSON(r, &m); err != nil {
		return m, err
	}
	if len(m.Session) != sessionSize || len(m.MsgB) != msgBSize {
		return m, errors.New("malformed pairing answer")
	}
	return m, nil
}

func parseFinishResponse(r io.Reader) (finishResponse, error) {
	var m finishResponse
	if err := decodeJSON(r, &m); err != nil {
		return m, err
	}
	if len(m.Confirm) != confirmSize || len(m.Sealed) < chacha20poly1305.Overhead || len(m.Sealed) > maxSealed {
		return m, errors.New("malformed pairing answer")
	}
	return m, nil
}

// Pairing is what the device learns from a successful pairing.
type Pairing struct {
	// LaptopPin is the pin of the laptop's TLS certificate; from now on only
	// a client holding that key may use the API.
	LaptopPin string
	// Case holds the recipients new recordings are sealed to.
	Case Case
	// Now is the laptop's wall time when it sent the payload.
	Now time.Time
}

// Case is a case's recipients as the laptop sent them.
type Case struct {
	// Recipients are age recipient strings, one per entry, as sent; keep
	// them (not Parsed) to persist the pairing.
	Recipients []string
	// Parsed is Recipients as storage seals to them.
	Parsed storage.Recipients
	// Ref is an opaque case reference chosen by the laptop. It is not
	// personal data by contract, but it is never logged either.
	Ref string
}

// parseLaptopPayload checks the laptop's payload completely.
func parseLaptopPayload(b []byte) (Pairing, error) {
	var w laptopWire
	if err := decodeJSON(bytes.NewReader(b), &w); err != nil {
		return Pairing{}, err
	}
	if !custody.ValidPin(w.LaptopCertPin) {
		return Pairing{}, errors.New("laptop_cert_pin must be 64 lowercase hex digits")
	}
	c, err := NewCase(w.Recipients, w.CaseRef)
	if err != nil {
		return Pairing{}, err
	}
	now, err := time.Parse(time.RFC3339Nano, w.Now)
	if err != nil {
		return Pairing{}, errors.New("now must be an RFC 3339 time")
	}
	return Pairing{LaptopPin: w.LaptopCertPin, Case: c, Now: now}, nil
}

func parseDevicePayload(b []byte) (deviceWire, error) {
	var w deviceWire
	if err := decodeJSON(bytes.NewReader(b), &w); err != nil {
		return w, err
	}
	if !custody.ValidPin(w.DeviceCertPin) {
		return w, errors.New("device_cert_pin must be 64 lowercase hex digits")
	}
	// The laptop names a file after it: the device's own rule, nothing
	// looser.
	if !custody.ValidID(w.DeviceID) {
		return w, fmt.Errorf("device_id %q is not 16 lowercase hex digits", sanitize(w.DeviceID, 64))
	}
	return w, nil
}

// NewCase checks a case's recipients (one age recipient per entry, all of
// one kind, as storage.ParseRecipients requires) and its reference.
func NewCase(recipients []string, ref string) (Case, error) {
	if len(recipients) == 0 {
		return Case{}, errors.New("recipients: none given")
	}
	if len(recipients) > MaxRecipients {
		return Case{}, fmt.Errorf("recipients: more than %d", MaxRecipients)
	}
	var lines strings.Builder
	for i, r := range recipients {
		// One recipient per entry: no blank entries, comments or several
		// recipients smuggled into one through a newline.
		if r == "" || strings.HasPrefix(r, "#") || strings.IndexFunc(r, unicode.IsSpace) >= 0 || !utf8.ValidString(r) {
			return Case{}, fmt.Errorf("recipients: entry %d is not a single age recipient", i)
		}
		lines.WriteString(r)
		lines.WriteByte('\n')
	}
	parsed, err := storage.ParseRecipients(strings.NewReader(lines.String()))
	if err != nil {
		return Case{}, err
	}
	if !validText(ref, maxCaseRef) {
		return Case{}, fmt.Errorf("case_ref: at most %d bytes of printable UTF-8", maxCaseRef)
	}
	return Case{Recipients: append([]string(nil), recipients...), Parsed: parsed, Ref: ref}, nil
}

// validText: printable UTF-8 of at most max bytes (empty is fine).
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// decodeJSON decodes exactly one JSON object with no unknown fields.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("bad JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("bad JSON: trailing data after the object")
	}
	return nil
}
