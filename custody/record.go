package custody

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Event is the kind of an audit record.
type Event string

// Audit events, with the fields each carries besides seq, time and the
// chain hashes.
const (
	// EventBoot: the daemon started (mono_ms restarts here). detail: optional.
	EventBoot Event = "boot"
	// EventPaired: a laptop paired. case_ref; sha256 = the laptop's pin.
	EventPaired Event = "paired"
	// EventPairingFailed: a pairing attempt failed. detail, e.g. "wrong_code", "too_many".
	EventPairingFailed Event = "pairing_failed"
	// EventRecordingStarted: recording, case_ref.
	EventRecordingStarted Event = "recording_started"
	// EventRecordingStopped: recording; detail = the end reason
	// ("stopped", "max-duration", "disk-full", …).
	EventRecordingStopped Event = "recording_stopped"
	// EventRecordingSealed: the recording's last segment is sealed.
	// recording, count = segments, bytes = ciphertext, sha256 = the
	// segments digest: SHA-256 over the segments' ciphertext hashes, in
	// segment order, each as lowercase hex followed by "\n"
	// (printf '%s\n' HASHES | sha256sum).
	EventRecordingSealed Event = "recording_sealed"
	// EventRecordingInterrupted: found cut off by a power loss at start-up.
	// recording, count, bytes, sha256 as for recording_sealed.
	EventRecordingInterrupted Event = "recording_interrupted"
	// EventSegmentTransferred: segments sent whole to the paired laptop
	// (a refused or partial download is no transfer).
	// recording, segments = their numbers, bytes.
	EventSegmentTransferred Event = "segment_transferred"
	// EventAcknowledged: the laptop acknowledged segments, which the device
	// then deleted. recording, segments; detail "manifest" when the
	// manifest was acknowledged too.
	EventAcknowledged Event = "acknowledged"
	// EventDeleted: a fully acknowledged recording's directory was removed.
	// recording, count = segments.
	EventDeleted Event = "deleted"
	// EventClockSet: the paired laptop set the clock; wall is the new time.
	EventClockSet Event = "clock_set"
	// EventReset: factory reset. count = recordings erased, sha256 =
	// SHA-256 of the signed erasure certificate (CertificateDigest).
	EventReset Event = "reset"
	// EventRecovered: the writer cut a torn last line when it reopened the
	// log after a power cut. detail "torn_tail", bytes, sha256 of the cut
	// bytes.
	EventRecovered Event = "recovered"
	// EventCaseCleared: the paired laptop closed the case the device
	// recorded to; it records nothing until a case is set. case_ref = the
	// case that was cleared.
	EventCaseCleared Event = "case_cleared"
)

// Laptop events: the laptop keeps a chain of its own per case (the same
// line format), for what happens to the case on the laptop. Their fields
// besides seq, time and the chain hashes:
const (
	// EventConsentGiven: consent recorded or amended. count = the consent
	// entry's number in the case (from 1), sha256 = SHA-256 of the entry's
	// JSON as the case keeps it.
	EventConsentGiven Event = "consent_given"
	// EventConsentWithdrawn: consent withdrawn for one scope. detail = the
	// scope, count = the withdrawal's number in the case (from 1), sha256 =
	// SHA-256 of the withdrawal's JSON.
	EventConsentWithdrawn Event = "consent_withdrawn"
	// EventExported: a recording decrypted into a plaintext file.
	// recording, detail = the purpose (a consent scope), bytes, sha256 =
	// SHA-256 of the file; the laptop keeps where it was written.
	EventExported Event = "exported"
	// EventCaseUsed: a device was set to record to the case. sha256 = the
	// device's key pin.
	EventCaseUsed Event = "case_used"
	// EventDeviceChain: the device's audit chain was pulled. count = its
	// last seq, sha256 = the line hash of that record: the link between
	// the laptop's chain and the device's.
	EventDeviceChain Event = "device_chain"
	// EventCaseClosed: the case was closed. count = retention days.
	EventCaseClosed Event = "case_closed"
	// EventCaseErased: the case key was destroyed. count = vault files
	// removed; detail "retention" when the retention run erased it,
	// "practitioner" when erased by hand.
	EventCaseErased Event = "case_erased"
)

var events = map[Event]bool{
	EventBoot: true, EventPaired: true, EventPairingFailed: true,
	EventRecordingStarted: true, EventRecordingStopped: true, EventRecordingSealed: true,
	EventRecordingInterrupted: true, EventSegmentTransferred: true, EventAcknowledged: true,
	EventDeleted: true, EventClockSet: true, EventReset: true, EventRecovered: true,
	EventCaseCleared:  true,
	EventConsentGiven: true, EventConsentWithdrawn: true, EventExported: true, EventCaseUsed: true,
	EventDeviceChain: true, EventCaseClosed: true, EventCaseErased: true,
}

// Record is one record of the audit chain. Its fields are the whole of
// what the chain can hold: event types, opaque ids, counts, sizes, hashes
// and times. There is no free-text field.
type Record struct {
	Seq         uint64 `json:"seq"`
	Event       Event  `json:"event"`
	MonoMS      int64  `json:"mono_ms"`
	Wall        string `json:"wall"`
	WallTrusted bool   `json:"wall_trusted"`
	// Recording is an opaque recording id (16 hex digits).
	Recording string `json:"recording,omitempty"`
	// Segments are segment numbers (from 0).
	Segments []int `json:"segments,omitempty"`
	Count    int   `json:"count,omitempty"`
	Bytes    int64 `json:"bytes,omitempty"`
	// SHA256 is a lowercase hex SHA-256 (of ciphertext, a certificate, a pin).
	SHA256 string `json:"sha256,omitempty"`
	// CaseRef is the laptop's opaque case id (16 hex digits); see CaseRef.
	CaseRef string `json:"case_ref,omitempty"`
	// Detail is a short machine string: [a-z0-9_-]{0,32}.
	Detail string `json:"detail,omitempty"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash,omitempty"`
}

// WallTime returns the record's wall time and whether it was trusted.
func (r Record) WallTime() (time.Time, bool) {
	if !r.WallTrusted || r.Wall == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, r.Wall)
	return t, err == nil
}

// ZeroHash is the prev of the first record of a chain without an anchor.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxLine bounds the length of one record's line.
const MaxLine = 256 << 10

// maxNumber bounds segment numbers and counts (fits an int on 32-bit ARM).
const maxNumber = 1 << 30

var (
	detailRE = regexp.MustCompile(`^[a-z0-9_-]{0,32}$`)
	// eventRE is what a verifier accepts as an event name, so that a chain
	// from a newer device with new events still verifies; a writer
	// (CheckNew, Seal) takes only the constants above.
	eventRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// LineHash is the lowercase hex SHA-256 of a record's line (without its
// newline): the prev of the record that follows it.
func LineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// CaseRef turns a case reference into what the chain may hold: the
// laptop's case ids (16 lowercase hex digits) pass unchanged, anything else
// becomes the first 16 hex digits of its SHA-256, so a careless reference
// never reaches the log in clear.
func CaseRef(ref string) string {
	if ref == "" || ValidID(ref) {
		return ref
	}
	sum := sha256.Sum256([]byte("attune case ref\x00" + ref))
	return hex.EncodeToString(sum[:8])
}

// CheckNew checks the fields a writer gives a new record (the event and
// the content fields): the event must be one of the constants above and
// every field must be in its alphabet.
func (r Record) CheckNew() error { return r.checkContent(true) }

// checkContent checks the fields a writer gives; strictEvent limits the
// event to the known constants.
func (r *Record) checkContent(strictEvent bool) error {
	if strictEvent && !events[r.Event] {
		return fmt.Errorf("unknown event %q", r.Event)
	}
	if !eventRE.MatchString(string(r.Event)) {
		return errors.New("event must match [a-z0-9_]{1,32}")
	}
	if r.Recording != "" && !ValidID(r.Recording) {
		return errors.New("recording must be a recording id (16 hex digits)")
	}
	if r.CaseRef != "" && !ValidID(r.CaseRef) {
		return errors.New("case_ref must be an opaque case id (16 hex digits; see custody.CaseRef)")
	}
	for _, n := range r.Segments {
		if n < 0 || n > maxNumber {
			return fmt.Errorf("segment number %d out of range", n)
		}
	}
	if r.Count < 0 || r.Count > maxNumber {
		return fmt.Errorf("count %d out of range", r.Count)
	}
	if r.Bytes < 0 {
		return fmt.Errorf("bytes %d out of range", r.Bytes)
	}
	if r.SHA256 != "" && !isHex64(r.SHA256) {
		return errors.New("sha256 must be 64 lowercase hex digits")
	}
	if !detailRE.MatchString(r.Detail) {
		return errors.New("detail must match [a-z0-9_-]{0,32}")
	}
	return nil
}

// checkSealed checks the fields Seal fills in.
func (r *Record) checkSealed() error {
	if r.Seq == 0 {
		return errors.New("seq must start at 1")
	}
	if r.MonoMS < 0 {
		return errors.New("negative mono_ms")
	}
	if r.WallTrusted != (r.Wall != "") {
		return errors.New("wall must be set exactly when wall_trusted")
	}
	if r.Wall != "" {
		t, err := time.Parse(time.RFC3339Nano, r.Wall)
		if err != nil || t.UTC().Format(time.RFC3339Nano) != r.Wall {
			return errors.New("wall must be RFC 3339 in UTC")
		}
	}
	if !isHex64(r.Prev) {
		return errors.New("prev must be 64 lowercase hex digits")
	}
	if !isHex64(r.Hash) {
		return errors.New("hash must be 64 lowercase hex digits")
	}
	return nil
}

// ownHash is the record's own hash: SHA-256 of its encoding without the
// hash member.
func ownHash(r Record) (string, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Seal makes r record seq of a chain whose last line hashes to prev: it
// fills in seq, mono_ms (from mono), wall and wall_trusted (wall, in UTC,
// when trusted and not zero), prev and hash, ignoring whatever r held
// there, and returns the record and its line (without the newline) as a
// writer appends it. The event and the content fields are checked as
// CheckNew does.
func Seal(r Record, seq uint64, prev string, mono time.Duration, wall time.Time, trusted bool) (Record, []byte, error) {
	if err := r.checkContent(true); err != nil {
		return Record{}, nil, err
	}
	if mono < 0 {
		return Record{}, nil, errors.New("negative monotonic time")
	}
	r.Seq = seq
	r.MonoMS = mono.Milliseconds()
	r.Wall, r.WallTrusted = "", false
	if trusted && !wall.IsZero() {
		r.Wall, r.WallTrusted = wall.UTC().Format(time.RFC3339Nano), true
	}
	r.Prev = prev
	if len(r.Segments) == 0 {
		r.Segments = nil // [] and null would not survive the canonical encoding
	}
	own, err := ownHash(r)
	if err != nil {
		return Record{}, nil, err
	}
	r.Hash = own
	line, err := json.Marshal(r)
	if err != nil {
		return Record{}, nil, err
	}
	if len(line) > MaxLine {
		return Record{}, nil, fmt.Errorf("record longer than %d bytes: split it", MaxLine)
	}
	return r, line, nil
}

// ParseLine decodes one line (without its newline) and checks it on its
// own: known fields only, every field in its alphabet, the canonical
// encoding, and its own hash. Its place in a chain (seq, prev) is checked
// by VerifyChain.
func ParseLine(line []byte) (Record, error) {
	if len(line) > MaxLine {
		return Record{}, fmt.Errorf("audit record: longer than %d bytes", MaxLine)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("audit record: not a record: %v", err)
	}
	if err := r.checkContent(false); err != nil {
		return Record{}, fmt.Errorf("audit record: %v", err)
	}
	if err := r.checkSealed(); err != nil {
		return Record{}, fmt.Errorf("audit record: %v", err)
	}
	enc, err := json.Marshal(r)
	if err != nil || !bytes.Equal(enc, line) {
		return Record{}, errors.New("audit record: not in canonical form (altered)")
	}
	own, err := ownHash(r)
	if err != nil || own != r.Hash {
		return Record{}, errors.New("audit record: hash does not match its content (altered)")
	}
	return r, nil
}
