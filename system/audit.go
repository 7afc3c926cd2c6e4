package system

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// AuditFile is the name of the audit chain in the data directory: the
// device's append-only, hash-chained event log, in the format of package
// custody (custody.Record, one JSON line each).
const AuditFile = "audit.log"

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

// Audit is the device's audit chain, open for appending. It is safe for
// concurrent use.
type Audit struct {
	path string
	now  func() (time.Duration, time.Time, bool)

	mu   sync.Mutex
	f    *os.File
	seq  uint64
	head string // line hash of the last record, or custody.ZeroHash
	// The file holds the records after base, chained onto baseHead: 0
	// and custody.ZeroHash, or after a factory reset (Compact) the seq
	// and line hash of the last record before the reset.
	base     uint64
	baseHead string
	offs     []int64    // offs[i]: file offset of the record with seq base+i+1
	sums     [][32]byte // sums[i]: line hash of the record with seq base+i+1
	size     int64
	err      error // sticky: the file's tail is in doubt until reopened
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
// with a *custody.ChainError naming the seq and leaves the file untouched as
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
	if _, err := custody.VerifyDeviceChain(body); err != nil {
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
	a := &Audit{path: path, now: now, f: f, size: int64(cut)}
	a.base, a.baseHead = custody.Anchor(body)
	a.head = a.baseHead
	for off := 0; off < len(body); {
		n := bytes.IndexByte(body[off:], '\n')
		sum := sha256.Sum256(body[off : off+n])
		a.offs = append(a.offs, int64(off))
		a.sums = append(a.sums, sum)
		off += n + 1
	}
	a.seq = a.base + uint64(len(a.offs))
	if len(a.sums) > 0 {
		a.head = hex.EncodeToString(a.sums[len(a.sums)-1][:])
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
		if _, err := a.Append(custody.Record{Event: custody.EventRecovered, Detail: "torn_tail", Bytes: int64(len(tail)), SHA256: hex.EncodeToString(sum[:])}); err != nil {
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
func (a *Audit) Append(r custody.Record) (custody.Record, error) {
	if err := r.CheckNew(); err != nil {
		return custody.Record{}, fmt.Errorf("audit append: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return custody.Record{}, errors.New("audit append: audit log closed")
	}
	if a.err != nil {
		return custody.Record{}, a.err
	}
	mono, wall, trusted := a.now()
	r, line, err := custody.Seal(r, a.seq+1, a.head, mono, wall, trusted)
	if err != nil {
		return custody.Record{}, fmt.Errorf("audit append: %v", err)
	}
	buf := append(line, '\n')
	if _, err := a.f.Write(buf); err != nil {
		// Take back a partial line so the chain stays whole.
		if terr := a.f.Truncate(a.size); terr != nil {
			a.err = fmt.Errorf("audit append: %v (and the partial record could not be removed: %v); restart the daemon", err, terr)
			return custody.Record{}, a.err
		}
		return custody.Record{}, fmt.Errorf("audit append: %v", err)
	}
	if err := a.f.Sync(); err != nil {
		a.err = fmt.Errorf("audit append: fsync: %v; restart the daemon", err)
		return custody.Record{}, a.err
	}
	a.offs = append(a.offs, a.size)
	a.sums = append(a.sums, sha256.Sum256(line))
	a.size += int64(len(buf))
	a.seq = r.Seq
	a.head = hex.EncodeToString(a.sums[len(a.sums)-1][:])
	return r, nil
}

// Head returns the seq and line hash of the last record (0 and
// custody.ZeroHash for an empty chain): what the next record's prev will be.
func (a *Audit) Head() (uint64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq, a.head
}

// Records returns the records after afterSeq, and the exact lines they were
// read from (each with its newline) for the laptop to keep. The lines are
// re-verified as they are read. After a factory reset the log holds
// nothing before the reset record: asked for earlier records, Records
// returns the chain from the reset record.
func (a *Audit) Records(afterSeq uint64) ([]custody.Record, []byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil, nil, errors.New("audit records: audit log closed")
	}
	if afterSeq >= a.seq {
		return nil, nil, nil
	}
	afterSeq = max(afterSeq, a.base)
	i := afterSeq - a.base
	start := a.offs[i]
	raw := make([]byte, a.size-start)
	if _, err := a.f.ReadAt(raw, start); err != nil {
		return nil, nil, fmt.Errorf("audit records: %v", err)
	}
	head := a.baseHead
	if i > 0 {
		head = hex.EncodeToString(a.sums[i-1][:])
	}
	recs, err := custody.VerifyChainFrom(afterSeq, head, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("audit records: %w", err)
	}
	return recs, raw, nil
}

// Compact is the end of a factory reset: it rewrites the log, atomically,
// so that it holds only its last record, which must be the reset record,
// and goes on appending after it (seq and head are unchanged). The records
// before it name recordings of the cases the reset erased, which the next
// laptop must not learn; what it needs to verify continuity stays: the
// reset record's seq and prev (the chain's head before the reset, which
// the erasure certificate signed) and the certificate's digest.
func (a *Audit) Compact() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("compact audit: audit log closed")
	}
	if a.err != nil {
		return a.err
	}
	if len(a.offs) == 0 {
		return errors.New("compact audit: the log is empty")
	}
	start := a.offs[len(a.offs)-1]
	line := make([]byte, a.size-start)
	if _, err := a.f.ReadAt(line, start); err != nil {
		return fmt.Errorf("compact audit: %v", err)
	}
	r, err := custody.ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		return fmt.Errorf("compact audit: %v", err)
	}
	if r.Event != custody.EventReset {
		return fmt.Errorf("compact audit: the last record is %s, not a factory reset", r.Event)
	}
	if len(a.offs) == 1 {
		return nil
	}
	if err := storage.WriteFileAtomic(a.path, line, 0o600); err != nil {
		return fmt.Errorf("compact audit: %v", err)
	}
	f, err := os.OpenFile(a.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		// The file holds the reset record; until reopened, nothing more.
		a.err = fmt.Errorf("compact audit: %v; restart the daemon", err)
		return a.err
	}
	a.f.Close()
	a.f = f
	a.base, a.baseHead = r.Seq-1, r.Prev
	a.offs = []int64{0}
	a.sums = a.sums[len(a.sums)-1:]
	a.size = int64(len(line))
	return nil
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

// BuildCertificate lists what a factory reset of store is about to erase:
// every recording directory, with the ciphertext hashes from its index and
// which segments the laptop had acknowledged. The time and the head of the
// chain come from audit. Call it, sign (custody.SignCertificate), erase,
// then append the reset record.
func BuildCertificate(store *storage.Store, audit *Audit, device string) (custody.Certificate, error) {
	if audit == nil {
		return custody.Certificate{}, errors.New("build certificate: no audit log")
	}
	_, wall, trusted := audit.now()
	seq, head := audit.Head()
	c := custody.Certificate{
		Version: 1, Device: device, Issued: wall.UTC().Round(0), WallTrusted: trusted,
		AuditSeq: seq, AuditHead: head, Recordings: []custody.ErasedRecording{},
	}
	ents, err := os.ReadDir(store.Dir())
	if err != nil {
		return custody.Certificate{}, fmt.Errorf("build certificate: %v", err)
	}
	type listed struct {
		seq uint64
		r   custody.ErasedRecording
	}
	var recs []listed
	for _, e := range ents {
		if !e.IsDir() || !custody.ValidID(e.Name()) {
			c.OtherEntries++
			continue
		}
		ix, err := store.Index(e.Name())
		if err != nil {
			recs = append(recs, listed{^uint64(0), custody.ErasedRecording{ID: e.Name(), State: "unreadable", Segments: []custody.ErasedSegment{}}})
			continue
		}
		er := custody.ErasedRecording{ID: ix.ID, State: string(ix.State), CaseRef: custody.CaseRef(ix.CaseRef), Segments: []custody.ErasedSegment{}, Complete: true}
		for _, s := range ix.Segments {
			er.Segments = append(er.Segments, custody.ErasedSegment{SHA256: s.SHA256, Size: s.Size, Synced: s.Acked})
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
	if err := c.Check(); err != nil {
		return custody.Certificate{}, fmt.Errorf("build certificate: %v", err)
	}
	return c, nil
}
