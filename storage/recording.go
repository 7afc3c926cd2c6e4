package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"filippo.io/age"
)

// Rec is a recording being written. It is the mkv.Sink of the live
// stream: Write encrypts as it goes into the current segment's temporary
// file, Flush seals that segment. A Rec is written by one goroutine; the
// manifest may be updated from another.
type Rec struct {
	s    *Store
	dir  string
	rcpt Recipients

	mu       sync.Mutex
	ix       *Index
	manifest Manifest

	seg *atomicFile    // current segment's file, nil between segments
	enc io.WriteCloser // age writer into seg
	// The seal chain: key lives only in (locked) memory, from Create to
	// Close; payload hashes the current segment's plaintext; prev is the
	// last sealed segment's MAC. key is guarded by mu (the manifest is
	// sealed with it from other goroutines); the rest is the writer's.
	key     []byte
	payload hash.Hash
	prev    [32]byte
	segMax  int64 // largest sealed segment so far
	err     error // sticky write error
	closed  bool
}

// Create starts a new recording sealed to rcpt. It refuses to start when
// free space is below the floor. The manifest is sealed at once, so even a
// recording cut off in its first second says what it was.
func (s *Store) Create(rcpt Recipients, m Manifest) (*Rec, error) {
	if len(rcpt.List) == 0 {
		return nil, errors.New("create recording: no recipients")
	}
	free, err := s.Free()
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	if free == 0 {
		return nil, fmt.Errorf("create recording: %w: less than the %d MB floor free", ErrFull, s.opts.MinFree>>20)
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()

	id := newID()
	dir := filepath.Join(s.dir, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create recording: %v", err)
	}
	m.Version = IndexVersion
	m.ID = id
	if m.Marks == nil {
		m.Marks = []Mark{}
	}
	key := make([]byte, SealKeySize)
	rand.Read(key)
	r := &Rec{
		s: s, dir: dir, rcpt: rcpt, manifest: m, key: key, payload: sha256.New(),
		ix: &Index{Version: IndexVersion, ID: id, Seq: seq, State: Recording, RecipientKind: rcpt.Kind, CaseRef: rcpt.CaseRef, Segments: []FileInfo{}},
	}
	if err := r.sealManifestLocked(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create recording: %v", err)
	}
	if err := r.commitIndexLocked(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create recording: %v", err)
	}
	if err := syncDir(s.dir); err != nil {
		return nil, fmt.Errorf("create recording: %v", err)
	}
	s.mu.Lock()
	s.open[id] = r
	s.mu.Unlock()
	return r, nil
}

// snapshot copies the index.
func (r *Rec) snapshot() *Index {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *Rec) snapshotLocked() *Index { return r.ix.clone() }

// ack acknowledges segments of a recording still being written.
func (r *Rec) ack(segments []int, manifest bool) (*Index, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ackIndex(r.dir, r.ix, segments, manifest); err != nil {
		return nil, err
	}
	return r.snapshotLocked(), nil
}

// ID is the recording's opaque id.
func (r *Rec) ID() string { return r.ix.ID }

// Write encrypts p into the current segment.
func (r *Rec) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.closed {
		return 0, errors.New("write segment: recording closed")
	}
	if r.seg == nil {
		if err := r.openSegment(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n, err := r.enc.Write(p)
	r.payload.Write(p[:n])
	if err != nil {
		r.fail(err)
		return n, r.err
	}
	return n, nil
}

func (r *Rec) openSegment() error {
	// Room for a segment as large as the largest so far, and the index.
	free, err := r.s.Free()
	if err != nil {
		return err
	}
	if free < uint64(2*r.segMax)+(64<<10) {
		return ErrFull
	}
	n := len(r.ix.Segments)
	seg, err := createAtomic(r.dir, SegmentName(n))
	if err != nil {
		return classify(fmt.Errorf("open segment: %w", err))
	}
	enc, err := age.Encrypt(seg, r.rcpt.List...)
	if err != nil {
		seg.abort()
		return fmt.Errorf("open segment: %v", err)
	}
	r.seg, r.enc = seg, enc
	r.payload.Reset()
	return nil
}

// fail drops the unsealed segment and makes err sticky.
func (r *Rec) fail(err error) {
	if r.seg != nil {
		r.seg.abort()
		r.seg, r.enc = nil, nil
	}
	r.err = classify(fmt.Errorf("write segment: %w", err))
}

// classify turns "no space left" into ErrFull so callers end cleanly.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w (%v)", ErrFull, err)
	}
	return err
}

// Flush seals the current segment: finishes the age file, fsyncs it,
// renames it into place, records it in the index and fsyncs the directory.
// Flush with no open segment does nothing.
func (r *Rec) Flush() error {
	if r.err != nil {
		return r.err
	}
	if r.seg == nil {
		return nil
	}
	// The seal: this segment's number, the previous MAC and the MAC over
	// them and the payload, as a Void element players skip.
	n := uint64(r.Segments())
	var ph [32]byte
	r.payload.Sum(ph[:0])
	mac := SegmentMAC(r.key, r.ix.ID, n, r.prev, ph)
	var key []byte
	if n == 0 {
		key = r.key
	}
	var trailer [SealSize]byte
	if _, err := r.enc.Write(appendSeal(trailer[:0], n, r.prev, mac, key)); err != nil {
		r.fail(err)
		return r.err
	}
	clear(trailer[:])
	if err := r.enc.Close(); err != nil {
		r.fail(err)
		return r.err
	}
	size, sum, err := r.seg.commit()
	r.seg, r.enc = nil, nil
	if err != nil {
		r.err = classify(fmt.Errorf("seal segment: %w", err))
		return r.err
	}
	if size > r.segMax {
		r.segMax = size
	}
	r.prev = mac
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ix.Segments = append(r.ix.Segments, FileInfo{Name: SegmentName(len(r.ix.Segments)), Size: size, SHA256: sum})
	// The sealed segment itself is the record; the index on disk catches up
	// every indexEvery segments (recovery adds the ones it lacks), which
	// spares a second file write and fsync per second of footage. Readers
	// of a live recording get the in-memory index (Store.Index).
	if len(r.ix.Segments)%indexEvery == 0 {
		if err := r.commitIndexLocked(); err != nil {
			r.err = classify(fmt.Errorf("seal segment: %w", err))
			return r.err
		}
	}
	if err := syncDir(r.dir); err != nil {
		r.err = fmt.Errorf("seal segment: %w", err)
		return r.err
	}
	return nil
}

// indexEvery is how often, in segments, a live recording's index.json is
// rewritten.
const indexEvery = 10

// Segments is the number of sealed segments.
func (r *Rec) Segments() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ix.Segments)
}

// Bytes is the ciphertext size of the sealed segments.
func (r *Rec) Bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ix.Bytes()
}

// UpdateManifest changes the manifest and seals the new version at once.
func (r *Rec) UpdateManifest(f func(*Manifest)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.key == nil {
		return errors.New("update manifest: the recording has ended")
	}
	f(&r.manifest)
	if err := r.sealManifestLocked(); err != nil {
		return err
	}
	if err := r.commitIndexLocked(); err != nil {
		return err
	}
	return syncDir(r.dir)
}

func (r *Rec) sealManifestLocked() error {
	m := r.manifest
	m.SealKey = hex.EncodeToString(r.key)
	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	defer clear(b)
	a, err := createAtomic(r.dir, ManifestName)
	if err != nil {
		return classify(err)
	}
	enc, err := age.Encrypt(a, r.rcpt.List...)
	if err != nil {
		a.abort()
		return err
	}
	if _, err := enc.Write(b); err != nil {
		a.abort()
		return classify(err)
	}
	if err := enc.Close(); err != nil {
		a.abort()
		return classify(err)
	}
	size, sum, err := a.commit()
	if err != nil {
		return classify(err)
	}
	r.ix.Manifest = &FileInfo{Name: ManifestName, Size: size, SHA256: sum}
	return nil
}

func (r *Rec) commitIndexLocked() error { return writeIndex(r.dir, r.ix) }

// Close ends the recording: it seals what is pending (if it can), marks the
// index complete and seals the final manifest via update. A recording that
// ended because the disk filled is still complete: every sealed segment is
// valid and nothing else was lost.
func (r *Rec) Close(update func(*Manifest)) error {
	if r.closed {
		return nil
	}
	flushErr := r.Flush()
	if r.seg != nil {
		r.seg.abort()
		r.seg, r.enc = nil, nil
	}
	r.closed = true
	defer func() {
		r.s.mu.Lock()
		delete(r.s.open, r.ix.ID)
		r.s.mu.Unlock()
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ix.State = Complete
	if update != nil {
		update(&r.manifest)
	}
	r.manifest.Segments = len(r.ix.Segments)
	if len(r.ix.Segments) > 0 {
		r.manifest.ChainHead = hex.EncodeToString(r.prev[:])
	}
	err := r.sealManifestLocked()
	// The key is forgotten: nothing can be sealed in this recording's name
	// any more.
	clear(r.key)
	r.key = nil
	if err != nil {
		// The manifest from the start is still there; the index must still
		// say the recording is complete.
		r.s.log.Warn("final manifest not sealed", "recording", r.ix.ID, "err", err)
	}
	if err := r.commitIndexLocked(); err != nil {
		return fmt.Errorf("close recording: %w", classify(err))
	}
	if err := syncDir(r.dir); err != nil {
		return fmt.Errorf("close recording: %w", err)
	}
	if flushErr != nil && !errors.Is(flushErr, ErrFull) {
		return fmt.Errorf("close recording: %w", flushErr)
	}
	return nil
}

// fileInfo hashes a sealed file.
func fileInfo(dir, name string) (FileInfo, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
