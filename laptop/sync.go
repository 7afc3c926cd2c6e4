package laptop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"filippo.io/age"

	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// DeviceAPI is the part of the device client sync uses (link.Client).
type DeviceAPI interface {
	SetClock(ctx context.Context, now time.Time) (link.ClockStatus, error)
	Recordings(ctx context.Context) ([]*storage.Index, error)
	Segment(ctx context.Context, id string, n int, offset int64, w io.Writer) (int64, error)
	Manifest(ctx context.Context, id string, w io.Writer) (int64, error)
	Ack(ctx context.Context, id string, segments []int, manifest bool) (*storage.Index, error)
}

var _ DeviceAPI = (*link.Client)(nil)

// SyncEvent reports progress.
type SyncEvent struct {
	Kind      string `json:"event"` // "plan", "bytes", "segment", "recording", "problem", "done"
	Recording string `json:"recording,omitempty"`
	Segment   int    `json:"segment,omitempty"`
	// Bytes fetched so far in this recording and in the whole sync, and
	// what each will total.
	RecBytes   int64  `json:"rec_bytes"`
	RecTotal   int64  `json:"rec_total"`
	Bytes      int64  `json:"bytes"`
	Total      int64  `json:"total"`
	Message    string `json:"message,omitempty"`
	Recordings int    `json:"recordings,omitempty"`
}

// SyncOptions tunes Sync.
type SyncOptions struct {
	Progress   func(SyncEvent)
	Passphrase func() (string, error)
	Now        func() time.Time
}

// RecordingSync is what Sync did with one recording.
type RecordingSync struct {
	ID       string   `json:"id"`
	Case     string   `json:"case"`
	State    string   `json:"state"`
	Segments int      `json:"segments"`
	Fetched  int      `json:"fetched"`  // segments downloaded this time
	Acked    int      `json:"acked"`    // segments acknowledged this time
	Held     int      `json:"held"`     // segments now in the vault
	Complete bool     `json:"complete"` // every segment and the final manifest are in the vault
	Problems []string `json:"problems,omitempty"`
}

// SyncResult summarises a sync.
type SyncResult struct {
	Recordings []RecordingSync `json:"recordings"`
	Bytes      int64           `json:"bytes"`
	ClockSet   bool            `json:"clock_set"`
}

// Problems counts the problems reported.
func (r *SyncResult) Problems() int {
	n := 0
	for _, rs := range r.Recordings {
		n += len(rs.Problems)
	}
	return n
}

func (h *Home) vaultDir(caseID, recID string) string {
	return filepath.Join(h.Dir, "vault", caseID, recID)
}

// ackBatch is how many verified segments are acknowledged at once.
const ackBatch = 16

// Sync fetches from the device everything the vault does not hold yet,
// verifies each segment (SHA-256 against the device's index, then a full
// decryption with the case identity), stores it still encrypted in the
// vault, and acknowledges it so the device deletes it. A segment that fails
// verification is reported, never acknowledged, and stays on the device.
// An interrupted sync resumes where it stopped: partial downloads continue
// with HTTP Range requests.
func (h *Home) Sync(ctx context.Context, api DeviceAPI, dev *Device, opts SyncOptions) (*SyncResult, error) {
	progress := opts.Progress
	if progress == nil {
		progress = func(SyncEvent) {}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res := &SyncResult{Recordings: []RecordingSync{}}
	if _, err := api.SetClock(ctx, now()); err != nil {
		return res, fmt.Errorf("sync: set the device clock: %w", err)
	}
	res.ClockSet = true
	recs, err := api.Recordings(ctx)
	if err != nil {
		return res, fmt.Errorf("sync: list recordings: %w", err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })

	// Plan: the bytes still to fetch.
	var total int64
	for _, ix := range recs {
		total += h.missingBytes(h.caseOf(ix, dev), ix)
	}
	progress(SyncEvent{Kind: "plan", Total: total, Recordings: len(recs)})
	ids := map[string]age.Identity{}
	st := &syncState{h: h, api: api, progress: progress, total: total}
	defer st.settle() // no fsync outlives Sync
	for _, ix := range recs {
		caseID := h.caseOf(ix, dev)
		rs := RecordingSync{ID: ix.ID, Case: caseID, State: string(ix.State), Segments: len(ix.Segments)}
		id, ok := ids[caseID]
		if !ok {
			c, err := h.Case(caseID)
			if err == nil {
				id, err = h.Identity(c, opts.Passphrase)
			}
			if err != nil {
				rs.Problems = append(rs.Problems, fmt.Sprintf("no key for this recording's case: %v", err))
				res.Recordings = append(res.Recordings, rs)
				progress(SyncEvent{Kind: "problem", Recording: ix.ID, Message: rs.Problems[0]})
				continue
			}
			ids[caseID] = id
		}
		if err := st.recording(ctx, ix, caseID, id, &rs); err != nil {
			res.Recordings = append(res.Recordings, rs)
			res.Bytes = st.done
			return res, err
		}
		res.Recordings = append(res.Recordings, rs)
	}
	res.Bytes = st.done
	progress(SyncEvent{Kind: "done", Bytes: st.done, Total: total})
	return res, nil
}

// caseOf is the case a recording belongs to: the reference the device
// wrote in its index, or, for a device paired before references, the
// device's current case.
func (h *Home) caseOf(ix *storage.Index, dev *Device) string {
	if ValidID(ix.CaseRef) {
		return ix.CaseRef
	}
	return dev.Case
}

func (h *Home) missingBytes(caseID string, ix *storage.Index) int64 {
	var n int64
	dir := h.vaultDir(caseID, ix.ID)
	for i, s := range ix.Segments {
		if s.Acked {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, segName(i))); err == nil && fi.Size() == s.Size {
			continue
		}
		n += s.Size
		if fi, err := os.Stat(filepath.Join(dir, partialName(segName(i)))); err == nil && fi.Size() <= s.Size {
			n -= fi.Size()
		}
	}
	return n
}

func segName(n int) string           { return fmt.Sprintf("%06d.age", n) }
func partialName(name string) string { return ".partial-" + name }

type syncState struct {
	syncing  sync.WaitGroup
	syncMu   sync.Mutex
	syncErr  error
	h        *Home
	api      DeviceAPI
	progress func(SyncEvent)
	total    int64
	done     int64
	rec      *storage.Index
	recBytes int64
	recTotal int64
}

// counter reports bytes as they arrive.
type counter struct {
	w  io.Writer
	st *syncState
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.st.done += int64(n)
	c.st.recBytes += int64(n)
	c.st.progress(SyncEvent{Kind: "bytes", Recording: c.st.rec.ID, RecBytes: c.st.recBytes, RecTotal: c.st.recTotal, Bytes: c.st.done, Total: c.st.total})
	return n, err
}

func (st *syncState) recording(ctx context.Context, ix *storage.Index, caseID string, id age.Identity, rs *RecordingSync) error {
	dir := st.h.vaultDir(caseID, ix.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sync: vault: %v", err)
	}
	st.rec, st.recBytes, st.recTotal = ix, 0, st.h.missingBytes(caseID, ix)
	var pending []int
	held := 0
	// Acknowledgements go out beside the next downloads, one at a time: a
	// batch is acknowledged only once it is durable, and the next batch
	// waits for the answer to the one before.
	var (
		inflight sync.WaitGroup
		ackMu    sync.Mutex
		ackErr   error
	)
	ack := func(manifest, wait bool) error {
		inflight.Wait()
		ackMu.Lock()
		err := ackErr
		ackMu.Unlock()
		if err != nil {
			return err
		}
		if len(pending) == 0 && !manifest {
			return nil
		}
		// Every renamed segment must be durable before the device deletes it.
		if err := st.settle(); err != nil {
			return fmt.Errorf("sync: vault: %v", err)
		}
		if err := storage.SyncDir(dir); err != nil {
			return fmt.Errorf("sync: vault: %v", err)
		}
		batch := append([]int(nil), pending...)
		pending = pending[:0]
		send := func() {
			nix, err := st.api.Ack(ctx, ix.ID, batch, manifest)
			if err == nil {
				err = writeJSON(filepath.Join(dir, "index.json"), nix)
			} else {
				err = fmt.Errorf("sync: acknowledge %s: %w", ix.ID, err)
			}
			ackMu.Lock()
			defer ackMu.Unlock()
			if err != nil {
				if ackErr == nil {
					ackErr = err
				}
				return
			}
			rs.Acked += len(batch)
		}
		if wait {
			send()
			ackMu.Lock()
			defer ackMu.Unlock()
			return ackErr
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			send()
		}()
		return nil
	}
	defer inflight.Wait() // no acknowledgement outlives its recording
	for n, seg := range ix.Segments {
		final := filepath.Join(dir, segName(n))
		if seg.Acked {
			if _, err := os.Stat(final); err != nil {
				rs.Problems = append(rs.Problems, fmt.Sprintf("segment %d: acknowledged earlier but missing from the vault", n))
			} else {
				held++
			}
			continue
		}
		if ok, _ := fileMatches(final, seg); ok {
			pending = append(pending, n) // verified by an earlier, interrupted sync
			held++
		} else {
			fetched, problem, err := st.fetch(ctx, dir, ix.ID, n, seg, id)
			if err != nil {
				return err
			}
			if problem != "" {
				rs.Problems = append(rs.Problems, problem)
				st.progress(SyncEvent{Kind: "problem", Recording: ix.ID, Segment: n, Message: problem})
				continue
			}
			if fetched {
				rs.Fetched++
			}
			held++
			pending = append(pending, n)
			st.progress(SyncEvent{Kind: "segment", Recording: ix.ID, Segment: n, RecBytes: st.recBytes, RecTotal: st.recTotal, Bytes: st.done, Total: st.total})
		}
		if len(pending) >= ackBatch {
			if err := ack(false, false); err != nil {
				return err
			}
		}
	}
	// The manifest is re-sealed while a recording runs: fetch it whole each
	// time, acknowledge it only once the recording has ended.
	manifestAck := false
	if ix.Manifest != nil && !ix.Manifest.Acked {
		problem, err := st.fetchManifest(ctx, dir, ix, id)
		if err != nil {
			return err
		}
		if problem != "" {
			rs.Problems = append(rs.Problems, problem)
		} else {
			manifestAck = ix.State != storage.Recording
		}
	}
	if err := ack(manifestAck, true); err != nil {
		return err
	}
	if rs.Acked == 0 {
		writeJSON(filepath.Join(dir, "index.json"), ix)
	}
	rs.Held = held
	_, merr := os.Stat(filepath.Join(dir, "manifest.age"))
	rs.Complete = held == len(ix.Segments) && ix.State != storage.Recording && merr == nil && len(rs.Problems) == 0
	st.progress(SyncEvent{Kind: "recording", Recording: ix.ID, RecBytes: st.recBytes, RecTotal: st.recTotal, Bytes: st.done, Total: st.total})
	return nil
}

// fetch downloads (or resumes) segment n into the vault and verifies it.
// A verification failure is a problem (reported, not acknowledged); a
// network error ends the sync.
func (st *syncState) fetch(ctx context.Context, dir, recID string, n int, seg storage.FileInfo, id age.Identity) (bool, string, error) {
	final := filepath.Join(dir, segName(n))
	part := filepath.Join(dir, partialName(segName(n)))
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, "", fmt.Errorf("sync: vault: %v", err)
	}
	keep := false // f is handed to durable on success
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	off, _ := f.Seek(0, io.SeekEnd)
	if off > seg.Size {
		f.Truncate(0)
		off, _ = f.Seek(0, io.SeekStart)
	}
	problem := ""
	switch {
	case off == 0:
		// A fresh download is hashed and decrypted as it arrives, beside
		// the download rather than after it, and never read back.
		v := newStreamVerifier(id)
		_, err := st.api.Segment(ctx, recID, n, 0, counter{io.MultiWriter(f, v), st})
		sum, derr := v.finish()
		if err != nil {
			f.Sync()
			if errors.Is(err, link.ErrNotFound) {
				return false, fmt.Sprintf("segment %d: gone from the device", n), nil
			}
			return false, "", fmt.Errorf("sync: segment %d of %s: %w", n, recID, err)
		}
		if size, _ := f.Seek(0, io.SeekCurrent); size != seg.Size || sum != seg.SHA256 {
			problem = "its hash does not match the device's index (damaged or tampered with)"
		} else if derr != nil {
			problem = fmt.Sprintf("does not decrypt with the case key (%v)", derr)
		}
	default:
		if off < seg.Size {
			if _, err := st.api.Segment(ctx, recID, n, off, counter{f, st}); err != nil {
				f.Sync()
				if errors.Is(err, link.ErrNotFound) {
					return false, fmt.Sprintf("segment %d: gone from the device", n), nil
				}
				return false, "", fmt.Errorf("sync: segment %d of %s: %w", n, recID, err)
			}
		}
		problem = verify(part, seg, id) // resumed: check the whole file
	}
	if problem != "" {
		f.Close()
		os.Remove(part)
		return false, fmt.Sprintf("segment %d: %s; not acknowledged, left on the device", n, problem), nil
	}
	if err := os.Rename(part, final); err != nil {
		return false, "", fmt.Errorf("sync: vault: %v", err)
	}
	// The file is made durable beside the next download; ack waits for it
	// (and fsyncs the directory) before the device may delete anything. A
	// crash before then leaves a file that the next sync re-hashes.
	keep = true
	st.durable(f)
	return true, "", nil
}

// durable fsyncs and closes f in the background.
func (st *syncState) durable(f *os.File) {
	st.syncing.Add(1)
	go func() {
		defer st.syncing.Done()
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			st.syncMu.Lock()
			if st.syncErr == nil {
				st.syncErr = err
			}
			st.syncMu.Unlock()
		}
	}()
}

// settle waits until every fetched file is durable.
func (st *syncState) settle() error {
	st.syncing.Wait()
	st.syncMu.Lock()
	defer st.syncMu.Unlock()
	return st.syncErr
}

func (st *syncState) fetchManifest(ctx context.Context, dir string, ix *storage.Index, id age.Identity) (string, error) {
	part := filepath.Join(dir, partialName("manifest.age"))
	f, err := os.Create(part)
	if err != nil {
		return "", fmt.Errorf("sync: vault: %v", err)
	}
	_, err = st.api.Manifest(ctx, ix.ID, f)
	f.Sync()
	f.Close()
	if err != nil {
		os.Remove(part)
		if errors.Is(err, link.ErrNotFound) {
			return "manifest: gone from the device", nil
		}
		return "", fmt.Errorf("sync: manifest of %s: %w", ix.ID, err)
	}
	// The manifest may have been re-sealed since the listing: check it
	// decrypts; the hash is checked when it matches the listing's.
	if problem := verify(part, storage.FileInfo{}, id); problem != "" {
		os.Remove(part)
		return "manifest: " + problem, nil
	}
	if err := os.Rename(part, filepath.Join(dir, "manifest.age")); err != nil {
		return "", fmt.Errorf("sync: vault: %v", err)
	}
	return "", storage.SyncDir(dir)
}

// verify checks size and SHA-256 against the index (when given) and that
// the whole file decrypts with id. It returns a problem, or "".
func verify(path string, want storage.FileInfo, id age.Identity) string {
	if want.SHA256 != "" {
		ok, err := fileMatches(path, want)
		if err != nil {
			return err.Error()
		}
		if !ok {
			return "its hash does not match the device's index (damaged or tampered with)"
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return fmt.Sprintf("does not decrypt with the case key (%v)", err)
	}
	return ""
}

// fileMatches reports whether the file at path has want's size and hash.
func fileMatches(path string, want storage.FileInfo) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, err
	}
	return n == want.Size && hex.EncodeToString(h.Sum(nil)) == want.SHA256, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(path, b, 0o600)
}

// VaultRecording is a recording held in the vault.
type VaultRecording struct {
	Case  string
	ID    string
	Dir   string
	Index *storage.Index
}

// Recordings lists the vault.
func (h *Home) Recordings() ([]VaultRecording, error) {
	var out []VaultRecording
	cases, err := os.ReadDir(filepath.Join(h.Dir, "vault"))
	if err != nil {
		return nil, fmt.Errorf("vault: %v", err)
	}
	for _, c := range cases {
		if !ValidID(c.Name()) {
			continue
		}
		recs, _ := os.ReadDir(filepath.Join(h.Dir, "vault", c.Name()))
		for _, r := range recs {
			if !storage.ValidID(r.Name()) {
				continue
			}
			dir := h.vaultDir(c.Name(), r.Name())
			vr := VaultRecording{Case: c.Name(), ID: r.Name(), Dir: dir}
			if b, err := os.ReadFile(filepath.Join(dir, "index.json")); err == nil {
				var ix storage.Index
				if json.Unmarshal(b, &ix) == nil {
					vr.Index = &ix
				}
			}
			out = append(out, vr)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Index != nil && out[j].Index != nil {
			return out[i].Index.Seq < out[j].Index.Seq
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// FindRecording finds a recording in the vault by id.
func (h *Home) FindRecording(id string) (VaultRecording, error) {
	recs, err := h.Recordings()
	if err != nil {
		return VaultRecording{}, err
	}
	for _, r := range recs {
		if r.ID == id {
			return r, nil
		}
	}
	return VaultRecording{}, fmt.Errorf("recording %s is not in the vault: run attune sync, then attune list: %w", id, fs.ErrNotExist)
}

// streamVerifier hashes and decrypts what is written to it in goroutines
// of its own, so verification runs beside the download: Write only queues
// a copy (a bounded queue: a slow verifier slows the download, never
// memory).
type streamVerifier struct {
	ch   chan *[]byte
	h    hash.Hash
	done chan error
}

func newStreamVerifier(id age.Identity) *streamVerifier {
	v := &streamVerifier{ch: make(chan *[]byte, 64), h: sha256.New(), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	dec := make(chan error, 1)
	go func() {
		r, err := age.Decrypt(pr, id)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		io.Copy(io.Discard, pr) // after a failure, keep the feeder moving
		dec <- err
	}()
	go func() {
		for b := range v.ch {
			v.h.Write(*b)
			pw.Write(*b)
			bufPool.Put(b)
		}
		pw.Close()
		v.done <- <-dec
	}()
	return v
}

// bufPool recycles the verifier's copies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

func (v *streamVerifier) Write(p []byte) (int, error) {
	b := bufPool.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	v.ch <- b
	return len(p), nil
}

// finish waits for the verification of everything written and returns the
// SHA-256 (hex) and the decryption's verdict.
func (v *streamVerifier) finish() (string, error) {
	close(v.ch)
	err := <-v.done
	return hex.EncodeToString(v.h.Sum(nil)), err
}
