package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"attune.dev/attune/custody"
)

// ErrFull is returned when the store has too little free space to seal
// another segment; the recording ends with everything sealed so far.
var ErrFull = errors.New("storage full")

// Options configures a Store.
type Options struct {
	// MinFree is the free space (bytes) below which no recording starts and
	// a running one ends. It must cover one segment plus index and manifest.
	MinFree uint64
	// Free reports free bytes for the data dir; nil means the filesystem's.
	Free func(dir string) (uint64, error)
}

// Store is the encrypted segment store under one data directory.
type Store struct {
	dir  string // DATA/recordings
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	seq       uint64
	open      map[string]*Rec // recordings being written
	cache     map[string]cachedIndex
	recovered []string // recordings found interrupted at Open
}

// Recovered lists the recordings Open found cut off by a power loss or a
// kill and marked interrupted.
func (s *Store) Recovered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.recovered...)
}

// Open opens (creating if needed) the store under dataDir and recovers
// recordings cut off by a power loss or a kill.
func Open(dataDir string, opts Options, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Free == nil {
		opts.Free = freeBytes
	}
	dir := filepath.Join(dataDir, RecordingsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %v", err)
	}
	s := &Store{dir: dir, opts: opts, log: log, open: map[string]*Rec{}, cache: map[string]cachedIndex{}}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Dir is the directory holding the recordings.
func (s *Store) Dir() string { return s.dir }

// Free returns the free bytes left above the configured floor.
func (s *Store) Free() (uint64, error) {
	f, err := s.opts.Free(s.dir)
	if err != nil {
		return 0, fmt.Errorf("free space: %v", err)
	}
	if f < s.opts.MinFree {
		return 0, nil
	}
	return f - s.opts.MinFree, nil
}

// List returns the indexes of all recordings, oldest first.
func (s *Store) List() ([]*Index, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list: %v", err)
	}
	var out []*Index
	for _, e := range ents {
		if !e.IsDir() || !custody.ValidID(e.Name()) {
			continue
		}
		ix, err := s.Index(e.Name())
		if err != nil {
			s.log.Warn("unreadable index", "recording", e.Name(), "err", err)
			continue
		}
		out = append(out, ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Unsynced returns the recordings the device holds that were not fully
// acknowledged (see Index.Synced), oldest first: footage that exists
// nowhere else.
func (s *Store) Unsynced() ([]*Index, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []*Index
	for _, ix := range list {
		if !ix.Synced() {
			out = append(out, ix)
		}
	}
	return out, nil
}

// Index returns the index of one recording.
func (s *Store) Index(id string) (*Index, error) {
	if !custody.ValidID(id) {
		return nil, fmt.Errorf("index: bad recording id")
	}
	s.mu.Lock()
	r := s.open[id]
	s.mu.Unlock()
	if r != nil {
		return r.snapshot(), nil
	}
	// A finished recording's index is parsed once and kept while its file
	// stays the same one (every rewrite is a rename: a new file): a sync
	// asks for it with every segment it fetches.
	path := filepath.Join(s.dir, id, IndexName)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("index: recording %s: %w", id, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("index: %v", err)
	}
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && os.SameFile(c.fi, fi) && c.fi.ModTime().Equal(fi.ModTime()) && c.fi.Size() == fi.Size() {
		return c.ix.clone(), nil
	}
	ix, err := readIndex(filepath.Join(s.dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("index: recording %s: %w", id, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[id] = cachedIndex{fi: fi, ix: ix.clone()}
	s.mu.Unlock()
	return ix, nil
}

type cachedIndex struct {
	fi os.FileInfo
	ix *Index
}

// clone copies an index deeply enough that callers may change it.
func (ix *Index) clone() *Index {
	c := *ix
	c.Segments = append([]FileInfo(nil), ix.Segments...)
	if ix.Manifest != nil {
		m := *ix.Manifest
		c.Manifest = &m
	}
	return &c
}

// SegmentPath is the path of a sealed segment.
func (s *Store) SegmentPath(id string, n int) string {
	return filepath.Join(s.dir, id, SegmentName(n))
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recover runs at open: it removes temporary files everywhere, marks
// recordings that were still being written as interrupted, and adds to
// their index any segment sealed after the index was last written.
func (s *Store) recover() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if isTemp(e.Name()) {
			os.RemoveAll(filepath.Join(s.dir, e.Name()))
			continue
		}
		if !e.IsDir() || !custody.ValidID(e.Name()) {
			continue
		}
		if err := s.recoverOne(e.Name()); err != nil {
			return fmt.Errorf("recover %s: %w", e.Name(), err)
		}
	}
	return syncDir(s.dir)
}

func (s *Store) recoverOne(id string) error {
	dir := filepath.Join(s.dir, id)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	removed := 0
	for _, e := range ents {
		if isTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			removed++
		}
	}
	ix, err := readIndex(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Killed before the first index was written.
		ix = &Index{Version: IndexVersion, ID: id, State: Recording}
	case err != nil:
		return err
	}
	if ix.Seq > s.seq {
		s.seq = ix.Seq
	}
	if ix.State != Recording {
		if removed > 0 {
			return syncDir(dir)
		}
		return nil
	}
	// Segments sealed after the last index write.
	for n := len(ix.Segments); ; n++ {
		fi, err := fileInfo(dir, SegmentName(n))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		ix.Segments = append(ix.Segments, fi)
	}
	if ix.Manifest == nil {
		if fi, err := fileInfo(dir, ManifestName); err == nil {
			ix.Manifest = &fi
		}
	}
	ix.State = Interrupted
	if err := writeIndex(dir, ix); err != nil {
		return err
	}
	s.log.Info("recording interrupted", "recording", id, "segments", len(ix.Segments))
	s.recovered = append(s.recovered, id)
	return syncDir(dir)
}

// EraseAll deletes every recording (a factory reset). What it deletes is
// ciphertext; the keys that could open it never were on the device.
func (s *Store) EraseAll() (int, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("erase: %v", err)
	}
	n := 0
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.dir, e.Name())); err != nil {
			return n, fmt.Errorf("erase: %v", err)
		}
		if e.IsDir() && custody.ValidID(e.Name()) {
			n++
		}
	}
	return n, syncDir(s.dir)
}

// ManifestPath is the path of a recording's sealed manifest.
func (s *Store) ManifestPath(id string) string {
	return filepath.Join(s.dir, id, ManifestName)
}

// ErrNotFound is returned for a recording or segment the store does not hold.
var ErrNotFound = errors.New("not found")

// Ack records that the paired laptop verified and stored the given
// segments (and the manifest, if manifest is set) of recording id, and
// deletes them from the device. Once a finished recording is fully
// acknowledged its directory is removed. Acknowledging twice is harmless;
// an unknown id or segment number is ErrNotFound and changes nothing.
func (s *Store) Ack(id string, segments []int, manifest bool) (*Index, error) {
	if !custody.ValidID(id) {
		return nil, fmt.Errorf("ack: %w: bad recording id", ErrNotFound)
	}
	s.mu.Lock()
	r := s.open[id]
	s.mu.Unlock()
	if r != nil {
		return r.ack(segments, manifest)
	}
	dir := filepath.Join(s.dir, id)
	ix, err := readIndex(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ack: recording %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("ack: %v", err)
	}
	if err := ackIndex(dir, ix, segments, manifest); err != nil {
		return nil, err
	}
	if ix.State != Recording && ix.Synced() {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("ack: %v", err)
		}
		if err := syncDir(s.dir); err != nil {
			return nil, fmt.Errorf("ack: %v", err)
		}
		s.log.Info("recording deleted after acknowledgement", "recording", id)
	}
	return ix, nil
}

// ackIndex checks the numbers, deletes the files and rewrites the index.
func ackIndex(dir string, ix *Index, segments []int, manifest bool) error {
	for _, n := range segments {
		if n < 0 || n >= len(ix.Segments) {
			return fmt.Errorf("ack: segment %d: %w", n, ErrNotFound)
		}
	}
	if manifest && ix.Manifest == nil {
		return fmt.Errorf("ack: manifest: %w", ErrNotFound)
	}
	for _, n := range segments {
		if ix.Segments[n].Acked {
			continue
		}
		if err := os.Remove(filepath.Join(dir, ix.Segments[n].Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ack: %v", err)
		}
		ix.Segments[n].Acked = true
	}
	if manifest && !ix.Manifest.Acked {
		// The manifest is deleted only with the whole recording: while it
		// is being written it is still re-sealed on every mark.
		ix.Manifest.Acked = true
	}
	if err := writeIndex(dir, ix); err != nil {
		return fmt.Errorf("ack: %v", err)
	}
	return syncDir(dir)
}

// Synced reports whether the paired laptop acknowledged every segment and
// the manifest: nothing of the recording is left only on the device.
func (ix *Index) Synced() bool {
	for _, s := range ix.Segments {
		if !s.Acked {
			return false
		}
	}
	return ix.Manifest == nil || ix.Manifest.Acked
}
