package system

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
)

// AuditFile is the name of the audit chain in the data directory: the
// device's append-only, hash-chained event log.
//
// DATA/audit.log is JSON Lines: one record per line, each line ending in
// "\n". A record is the JSON encoding of AuditRecord by encoding/json
// (json.Marshal: compact, fields in struct order, omitempty fields left out
// when zero), for example
//
//	{"seq":7,"event":"recording_sealed","mono_ms":912345,"wall":"2026-03-01T10:14:02.5Z","wall_trusted":true,"recording":"0123456789abcdef","count":750,"bytes":1073741824,"sha256":"…","prev":"…","hash":"…"}
//
// Every field is restricted to a small alphabet (digits, lowercase hex,
// [a-z0-9_-], RFC 3339 times), so the encoding needs no escapes and is the
// same for every JSON encoder that keeps field order. A line must be exactly
// the encoding of the record it decodes to: a verifier decodes it, encodes
// the record again and compares the bytes, so there is one way to write
// each record and no byte of a line can change unnoticed.
//
// Two hashes chain the records, both lowercase hex SHA-256:
//
//   - hash (the record's own hash) is SHA-256 of the record's line with the
//     hash member left out: json.Marshal of the record with Hash "" (the
//     field is omitempty and last), which is the line with its final
//     `,"hash":"<64 hex>"` removed before the closing brace. In a shell:
//     sed 's/,"hash":"[0-9a-f]*"}$/}/' | head -c -1 | sha256sum, one line at a time.
//   - prev is SHA-256 of the previous record's exact line bytes (without the
//     newline: head -c -1 | sha256sum), which include that record's hash.
//     The first record's prev is ZeroHash, or the line hash of a chain
//     anchor (VerifyChainFrom).
//
// seq counts from 1 without gaps. mono_ms is the caller's monotonic clock in
// milliseconds; it restarts at every boot (a boot record marks the restart).
// wall is RFC 3339 with nanoseconds in UTC when the wall clock is trusted,
// and empty (wall_trusted false) when it is not: the Pi boots in 1970.
//
// The chain proves order and integrity against a copy kept elsewhere (the
// laptop keeps one per case and refuses a chain that does not extend it);
// on its own it cannot show that records were cut off at the end. The
// factory reset ties the chain to the erasure certificate: the certificate
// names the head of the chain (AuditSeq, AuditHead) and the reset record
// that follows carries the SHA-256 of the signed certificate.
const AuditFile = "audit.log"

// AuditEvent is the kind of an audit record.
type AuditEvent string

// Audit events, with the fields each carries besides seq, time and the
// chain hashes.
const (
	// AuditBoot: the daemon started (mono_ms restarts here). detail: optional.
	AuditBoot AuditEvent = "boot"
	// AuditPaired: a laptop paired. case_ref; sha256 = the laptop's pin.
	AuditPaired AuditEvent = "paired"
	// AuditPairingFailed: a pairing attempt failed. detail, e.g. "wrong_code", "too_many".
	AuditPairingFailed AuditEvent = "pairing_failed"
	// AuditRecordingStarted: recording, case_ref.
	AuditRecordingStarted AuditEvent = "recording_started"
	// AuditRecordingStopped: recording; detail = the end reason
	// ("stopped", "max-duration", "disk-full", …).
	AuditRecordingStopped AuditEvent = "recording_stopped"
	// AuditRecordingSealed: the recording's last segment is sealed.
	// recording, count = segments, bytes = ciphertext, sha256 = SegmentsDigest.
	AuditRecordingSealed AuditEvent = "recording_sealed"
	// AuditRecordingInterrupted: found cut off by a power loss at start-up.
	// recording, count, bytes, sha256 as for recording_sealed.
	AuditRecordingInterrupted AuditEvent = "recording_interrupted"
	// AuditSegmentTransferred: segments served to the paired laptop.
	// recording, segments = their numbers, bytes.
	AuditSegmentTransferred AuditEvent = "segment_transferred"
	// AuditAcknowledged: the laptop acknowledged segments, which the device
	// then deleted. recording, segments; detail "manifest" when the
	// manifest was acknowledged too.
	AuditAcknowledged AuditEvent = "acknowledged"
	// AuditDeleted: a fully acknowledged recording's directory was removed.
	// recording, count = segments.
	AuditDeleted AuditEvent = "deleted"
	// AuditClockSet: the paired laptop set the clock; wall is the new time.
	AuditClockSet AuditEvent = "clock_set"
	// AuditReset: factory reset. count = recordings erased, sha256 =
	// SHA-256 of the signed erasure certificate.
	AuditReset AuditEvent = "reset"
	// AuditRecovered: OpenAudit cut a torn last line (see OpenAudit).
	// detail "torn_tail", bytes, sha256 of the cut bytes.
	AuditRecovered AuditEvent = "recovered"
)

var auditEvents = map[AuditEvent]bool{
	AuditBoot: true, AuditPaired: true, AuditPairingFailed: true,
	AuditRecordingStarted: true, AuditRecordingStopped: true, AuditRecordingSealed: true,
	AuditRecordingInterrupted: true, AuditSegmentTransferred: true, AuditAcknowledged: true,
	AuditDeleted: true, AuditClockSet: true, AuditReset: true, AuditRecovered: true,
}

// AuditRecord is one record of the audit chain. Its fields are the whole of
// what the chain can hold: event types, opaque ids, counts, sizes, hashes
// and times. There is no free-text field.
type AuditRecord struct {
	Seq         uint64     `json:"seq"`
	Event       AuditEvent `json:"event"`
	MonoMS      int64      `json:"mono_ms"`
	Wall        string     `json:"wall"`
	WallTrusted bool       `json:"wall_trusted"`
	// Recording is an opaque recording id (16 hex digits).
	Recording string `json:"recording,omitempty"`
	// Segments are segment numbers (from 0).
	Segments []int `json:"segments,omitempty"`
	Count    int   `json:"count,omitempty"`
	Bytes    int64 `json:"bytes,omitempty"`
	// SHA256 is a lowercase hex SHA-256 (of ciphertext, a certificate, a pin).
	SHA256 string `json:"sha256,omitempty"`
	// CaseRef is the laptop's opaque case id (16 hex digits); see AuditCaseRef.
	CaseRef string `json:"case_ref,omitempty"`
	// Detail is a short machine string: [a-z0-9_-]{0,32}.
	Detail string `json:"detail,omitempty"`
	Prev   string `json:"prev"`
	Hash   string `json:"hash,omitempty"`
}

// WallTime returns the record's wall time and whether it was trusted.
func (r AuditRecord) WallTime() (time.Time, bool) {
	if !r.WallTrusted || r.Wall == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, r.Wall)
	return t, err == nil
}

// ZeroHash is the prev of the first record of a chain without an anchor.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxAuditLine bounds the length of one record's line.
const MaxAuditLine = 256 << 10

// maxAuditNumber bounds segment numbers and counts (fits an int on 32-bit ARM).
const maxAuditNumber = 1 << 30

var (
	auditDetailRE = regexp.MustCompile(`^[a-z0-9_-]{0,32}$`)
	// auditEventRE is what a verifier accepts as an event name, so that a
	// chain from a newer device with new events still verifies; Append
	// takes only the constants above.
	auditEventRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// LineHash is the lowercase hex SHA-256 of a record's line (without its
// newline): the prev of the record that follows it.
func LineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// AuditCaseRef turns a case reference into what the chain may hold: the
// laptop's case ids (16 lowercase hex digits) pass unchanged, anything else
// becomes the first 16 hex digits of its SHA-256, so a careless reference
// never reaches the log in clear.
func AuditCaseRef(ref string) string {
	if ref == "" || storage.ValidID(ref) {
		return ref
	}
	sum := sha256.Sum256([]byte("attune case ref\x00" + ref))
	return hex.EncodeToString(sum[:8])
}

// SegmentsDigest is the sha256 of recording_sealed and
// recording_interrupted records: SHA-256 over the segments' ciphertext
// hashes, in segment order, each as lowercase hex followed by "\n"
// (printf '%s\n' HASHES | sha256sum).
func SegmentsDigest(ix *storage.Index) string {
	h := sha256.New()
	for _, s := range ix.Segments {
		io.WriteString(h, s.SHA256+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// checkContent checks the fields a caller gives; strictEvent limits the
// event to the known constants.
func (r *AuditRecord) checkContent(strictEvent bool) error {
	if strictEvent && !auditEvents[r.Event] {
		return fmt.Errorf("unknown event %q", r.Event)
	}
	if !auditEventRE.MatchString(string(r.Event)) {
		return errors.New("event must match [a-z0-9_]{1,32}")
	}
	if r.Recording != "" && !storage.ValidID(r.Recording) {
		return errors.New("recording must be a recording id (16 hex digits)")
	}
	if r.CaseRef != "" && !storage.ValidID(r.CaseRef) {
		return errors.New("case_ref must be an opaque case id (16 hex digits; see AuditCaseRef)")
	}
	for _, n := range r.Segments {
		if n < 0 || n > maxAuditNumber {
			return fmt.Errorf("segment number %d out of range", n)
		}
	}
	if r.Count < 0 || r.Count > maxAuditNumber {
		return fmt.Errorf("count %d out of range", r.Count)
	}
	if r.Bytes < 0 {
		return fmt.Errorf("bytes %d out of range", r.Bytes)
	}
	if r.SHA256 != "" && !isHex64(r.SHA256) {
		return errors.New("sha256 must be 64 lowercase hex digits")
	}
	if !auditDetailRE.MatchString(r.Detail) {
		return errors.New("detail must match [a-z0-9_-]{0,32}")
	}
	return nil
}

// checkSealed checks the fields Append fills in.
func (r *AuditRecord) checkSealed() error {
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

// auditOwnHash is the record's own hash: SHA-256 of its encoding without
// the hash member.
func auditOwnHash(r AuditRecord) (string, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ParseAuditLine decodes one line (without its newline) and checks it on
// its own: known fields only, every field in its alphabet, the canonical
// encoding, and its own hash. Its place in a chain (seq, prev) is checked
// by VerifyChain.
func ParseAuditLine(line []byte) (AuditRecord, error) {
	if len(line) > MaxAuditLine {
		return AuditRecord{}, fmt.Errorf("audit record: longer than %d bytes", MaxAuditLine)
	}
	var r AuditRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return AuditRecord{}, fmt.Errorf("audit record: not a record: %v", err)
	}
	if err := r.checkContent(false); err != nil {
		return AuditRecord{}, fmt.Errorf("audit record: %v", err)
	}
	if err := r.checkSealed(); err != nil {
		return AuditRecord{}, fmt.Errorf("audit record: %v", err)
	}
	enc, err := json.Marshal(r)
	if err != nil || !bytes.Equal(enc, line) {
		return AuditRecord{}, errors.New("audit record: not in canonical form (altered)")
	}
	own, err := auditOwnHash(r)
	if err != nil || own != r.Hash {
		return AuditRecord{}, errors.New("audit record: hash does not match its content (altered)")
	}
	return r, nil
}

// ChainError says where an audit chain stops verifying.
type ChainError struct {
	// Seq is the sequence number the record at the break should have had:
	// one more than the last record that verified.
	Seq    uint64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// VerifyChain verifies a whole chain (the bytes of an audit.log): records
// numbered from 1, the first with prev ZeroHash, each record's prev the hash
// of the line before it. It detects a modified, removed, reordered or
// inserted record and returns a *ChainError naming the seq where the chain
// breaks, with the records before the break. Empty input is an empty chain.
func VerifyChain(raw []byte) ([]AuditRecord, error) {
	return VerifyChainFrom(0, ZeroHash, raw)
}

// VerifyChainFrom verifies raw as the continuation of a chain whose last
// record was seq and had line hash head: its records must be numbered from
// seq+1, and the first one's prev must be head. VerifyChainFrom(0, anchor,
// raw) verifies a whole chain started on an anchor.
func VerifyChainFrom(seq uint64, head string, raw []byte) ([]AuditRecord, error) {
	if !isHex64(head) {
		return nil, errors.New("verify audit chain: head must be 64 lowercase hex digits")
	}
	var recs []AuditRecord
	prev := head
	for len(raw) > 0 {
		want := seq + 1
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return recs, &ChainError{Seq: want, Reason: "the last record is cut off (no newline)"}
		}
		line := raw[:i]
		raw = raw[i+1:]
		r, err := ParseAuditLine(line)
		if err != nil {
			return recs, &ChainError{Seq: want, Reason: err.Error()}
		}
		if r.Prev != prev {
			return recs, &ChainError{Seq: want, Reason: fmt.Sprintf("record (seq %d) does not follow the record before it: a record was altered, removed, reordered or inserted", r.Seq)}
		}
		if r.Seq != want {
			return recs, &ChainError{Seq: want, Reason: fmt.Sprintf("record says seq %d: records out of sequence", r.Seq)}
		}
		recs = append(recs, r)
		prev = LineHash(line)
		seq = want
	}
	return recs, nil
}

// Audit is the device's audit chain, open for appending. It is safe for
// concurrent use.
type Audit struct {
	path string
	now  func() (time.Duration, time.Time, bool)

	mu   sync.Mutex
	f    *os.File
	seq  uint64
	head string     // line hash of the last record, or ZeroHash
	offs []int64    // offs[i]: file offset of the record with seq i+1
	sums [][32]byte // sums[i]: line hash of the record with seq i+1
	size int64
	err  error // sticky: the file's tail is in doubt until reopened
}

// AuditClock binds the daemon's clock for OpenAudit: the monotonic time is
// the capture clock (time since the process started), the wall time that
// of c with its trust.
func AuditClock(c *Clock) func() (time.Duration, time.Time, bool) {
	return func() (time.Duration, time.Time, bool) {
		wall, trusted := c.Wall()
		return capture.Now(), wall, trusted
	}
}

// OpenAudit opens (creating, mode 0600) the audit chain at path and
// verifies it. now gives the time of each record: the monotonic time since
// boot, the wall time and whether it is trusted; nil means the time since
// OpenAudit and no trusted wall time.
//
// Append writes the whole line in one write(2) on an O_APPEND file and
// fsyncs it before returning, so a power cut can leave at most the last line
// cut short. OpenAudit treats the bytes after the last newline as that torn
// line: it truncates the file to the last complete record, fsyncs, and
// appends a "recovered" record (detail "torn_tail", bytes = how many bytes
// were cut, sha256 = their hash), so the cut is itself on the record. Those
// bytes are dropped even if they happen to be a whole record short of its
// newline: its Append never returned success. Any other damage (a complete
// line that does not verify, anywhere) is never repaired: OpenAudit fails
// with a *ChainError naming the seq and leaves the file untouched as
// evidence. To go on recording, an operator moves the file aside; the next
// OpenAudit starts a new chain, and the laptop reports that the device's
// history was replaced.
func OpenAudit(path string, now func() (mono time.Duration, wall time.Time, trusted bool)) (*Audit, error) {
	if now == nil {
		start := time.Now()
		now = func() (time.Duration, time.Time, bool) { return time.Since(start), time.Time{}, false }
	}
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open audit: %v", err)
	}
	cut := bytes.LastIndexByte(raw, '\n') + 1
	body, tail := raw[:cut], raw[cut:]
	if _, err := VerifyChain(body); err != nil {
		return nil, fmt.Errorf("open audit %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit: %v", err)
	}
	if err := storage.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit: %v", err)
	}
	a := &Audit{path: path, now: now, f: f, head: ZeroHash, size: int64(cut)}
	for off := 0; off < len(body); {
		n := bytes.IndexByte(body[off:], '\n')
		sum := sha256.Sum256(body[off : off+n])
		a.offs = append(a.offs, int64(off))
		a.sums = append(a.sums, sum)
		off += n + 1
	}
	a.seq = uint64(len(a.offs))
	if a.seq > 0 {
		a.head = hex.EncodeToString(a.sums[a.seq-1][:])
	}
	if len(tail) > 0 {
		if err := f.Truncate(int64(cut)); err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit: cut torn record: %v", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit: cut torn record: %v", err)
		}
		sum := sha256.Sum256(tail)
		if _, err := a.Append(AuditRecord{Event: AuditRecovered, Detail: "torn_tail", Bytes: int64(len(tail)), SHA256: hex.EncodeToString(sum[:])}); err != nil {
			f.Close()
			return nil, fmt.Errorf("open audit: %v", err)
		}
	}
	return a, nil
}

// Append adds a record and returns it as written. The caller sets the event
// and the content fields (recording, segments, count, bytes, sha256,
// case_ref, detail); Append fills seq, mono_ms, wall, wall_trusted, prev
// and hash, ignoring whatever the caller put there. A record with an
// unknown event or a field outside its alphabet is refused. The record is
// on disk (fsynced) when Append returns. After a failed write or fsync the
// Audit refuses further records until it is reopened (which recovers the
// tail).
func (a *Audit) Append(r AuditRecord) (AuditRecord, error) {
	if err := r.checkContent(true); err != nil {
		return AuditRecord{}, fmt.Errorf("audit append: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return AuditRecord{}, errors.New("audit append: audit log closed")
	}
	if a.err != nil {
		return AuditRecord{}, a.err
	}
	mono, wall, trusted := a.now()
	if mono < 0 {
		return AuditRecord{}, errors.New("audit append: negative monotonic time")
	}
	r.Seq = a.seq + 1
	r.MonoMS = mono.Milliseconds()
	r.Wall, r.WallTrusted = "", false
	if trusted && !wall.IsZero() {
		r.Wall, r.WallTrusted = wall.UTC().Format(time.RFC3339Nano), true
	}
	r.Prev = a.head
	if len(r.Segments) == 0 {
		r.Segments = nil // [] and null would not survive the canonical encoding
	}
	own, err := auditOwnHash(r)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("audit append: %v", err)
	}
	r.Hash = own
	line, err := json.Marshal(r)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("audit append: %v", err)
	}
	if len(line) > MaxAuditLine {
		return AuditRecord{}, fmt.Errorf("audit append: record longer than %d bytes: split it", MaxAuditLine)
	}
	buf := append(line, '\n')
	if _, err := a.f.Write(buf); err != nil {
		// Take back a partial line so the chain stays whole.
		if terr := a.f.Truncate(a.size); terr != nil {
			a.err = fmt.Errorf("audit append: %v (and the partial record could not be removed: %v); restart the daemon", err, terr)
			return AuditRecord{}, a.err
		}
		return AuditRecord{}, fmt.Errorf("audit append: %v", err)
	}
	if err := a.f.Sync(); err != nil {
		a.err = fmt.Errorf("audit append: fsync: %v; restart the daemon", err)
		return AuditRecord{}, a.err
	}
	a.offs = append(a.offs, a.size)
	a.sums = append(a.sums, sha256.Sum256(line))
	a.size += int64(len(buf))
	a.seq = r.Seq
	a.head = hex.EncodeToString(a.sums[len(a.sums)-1][:])
	return r, nil
}

// Head returns the seq and line hash of the last record (0 and ZeroHash
// for an empty chain): what the next record's prev will be.
func (a *Audit) Head() (uint64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq, a.head
}

// Records returns the records after afterSeq, and the exact lines they were
// read from (each with its newline) for the laptop to keep. The lines are
// re-verified as they are read.
func (a *Audit) Records(afterSeq uint64) ([]AuditRecord, []byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil, nil, errors.New("audit records: audit log closed")
	}
	if afterSeq >= a.seq {
		return nil, nil, nil
	}
	start := a.offs[afterSeq]
	raw := make([]byte, a.size-start)
	if _, err := a.f.ReadAt(raw, start); err != nil {
		return nil, nil, fmt.Errorf("audit records: %v", err)
	}
	head := ZeroHash
	if afterSeq > 0 {
		head = hex.EncodeToString(a.sums[afterSeq-1][:])
	}
	recs, err := VerifyChainFrom(afterSeq, head, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("audit records: %w", err)
	}
	return recs, raw, nil
}

// Close closes the file.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// CertificateType is the type of a signed erasure certificate.
//
// A factory reset lists what it is about to erase (BuildCertificate), signs
// the list with the device's Ed25519 key (the key of its TLS certificate,
// which the laptop pinned at pairing), erases, and appends a reset record
// whose sha256 is the SHA-256 of the signed document. The document is JSON:
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

func (c *Certificate) check() error {
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
		if !storage.ValidID(r.ID) {
			return errors.New("bad recording id")
		}
		switch r.State {
		case string(storage.Complete), string(storage.Interrupted), string(storage.Recording), "unreadable":
		default:
			return fmt.Errorf("recording %s: bad state", r.ID)
		}
		if r.CaseRef != "" && !storage.ValidID(r.CaseRef) {
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

// certPin is the pin of an Ed25519 public key, as link.Pin computes it from
// a certificate.
func certPin(pub ed25519.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}

// BuildCertificate lists what a factory reset of store is about to erase:
// every recording directory, with the ciphertext hashes from its index and
// which segments the laptop had acknowledged. The time and the head of the
// chain come from audit. Call it, sign, erase, then append the reset record.
func BuildCertificate(store *storage.Store, audit *Audit, device string) (Certificate, error) {
	if audit == nil {
		return Certificate{}, errors.New("build certificate: no audit log")
	}
	_, wall, trusted := audit.now()
	seq, head := audit.Head()
	c := Certificate{
		Version: 1, Device: device, Issued: wall.UTC().Round(0), WallTrusted: trusted,
		AuditSeq: seq, AuditHead: head, Recordings: []ErasedRecording{},
	}
	ents, err := os.ReadDir(store.Dir())
	if err != nil {
		return Certificate{}, fmt.Errorf("build certificate: %v", err)
	}
	type listed struct {
		seq uint64
		r   ErasedRecording
	}
	var recs []listed
	for _, e := range ents {
		if !e.IsDir() || !storage.ValidID(e.Name()) {
			c.OtherEntries++
			continue
		}
		ix, err := store.Index(e.Name())
		if err != nil {
			recs = append(recs, listed{^uint64(0), ErasedRecording{ID: e.Name(), State: "unreadable", Segments: []ErasedSegment{}}})
			continue
		}
		er := ErasedRecording{ID: ix.ID, State: string(ix.State), CaseRef: AuditCaseRef(ix.CaseRef), Segments: []ErasedSegment{}, Complete: true}
		for _, s := range ix.Segments {
			er.Segments = append(er.Segments, ErasedSegment{SHA256: s.SHA256, Size: s.Size, Synced: s.Acked})
			er.Complete = er.Complete && s.Acked
		}
		if ix.Manifest != nil {
			er.Manifest, er.ManifestSynced = ix.Manifest.SHA256, ix.Manifest.Acked
			er.Complete = er.Complete && ix.Manifest.Acked
		}
		recs = append(recs, listed{ix.Seq, er})
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].seq != recs[j].seq {
			return recs[i].seq < recs[j].seq
		}
		return recs[i].r.ID < recs[j].r.ID
	})
	for _, l := range recs {
		c.Recordings = append(c.Recordings, l.r)
	}
	if err := c.check(); err != nil {
		return Certificate{}, fmt.Errorf("build certificate: %v", err)
	}
	return c, nil
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
	pin, err := certPin(pub)
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
	if err := c.check(); err != nil {
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
	if err := c.check(); err != nil {
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
	pin, err := certPin(pub)
	if err != nil || c.Key != hex.EncodeToString(pub) || c.Pin != pin {
		return Certificate{}, errors.New("verify certificate: the certificate names another key")
	}
	return c, nil
}

// VerifyCertificatePin checks a signed certificate against the pin of the
// device (link.Pin) and returns it.
func VerifyCertificatePin(signed []byte, pin string) (Certificate, error) {
	c, _, _, err := parseCertificate(signed)
	if err != nil {
		return Certificate{}, fmt.Errorf("verify certificate: %v", err)
	}
	pub, err := hex.DecodeString(c.Key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return Certificate{}, errors.New("verify certificate: malformed key")
	}
	got, err := certPin(pub)
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
