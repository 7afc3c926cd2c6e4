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

	mu  sync.Mutex
	seq uint64
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
	dir := filepath.Join(dataDir, "recordings")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %v", err)
	}
	s := &Store{dir: dir, opts: opts, log: log}
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
		if !e.IsDir() || !ValidID(e.Name()) {
			continue
		}
		ix, err := readIndex(filepath.Join(s.dir, e.Name()))
		if err != nil {
			s.log.Warn("unreadable index", "recording", e.Name(), "err", err)
			continue
		}
		out = append(out, ix)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Index returns the index of one recording.
func (s *Store) Index(id string) (*Index, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("index: bad recording id")
	}
	ix, err := readIndex(filepath.Join(s.dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("index: recording %s: %w", id, fs.ErrNotExist)
	}
	return ix, err
}

// SegmentPath is the path of a sealed segment.
func (s *Store) SegmentPath(id string, n int) string {
	return filepath.Join(s.dir, id, segmentName(n))
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
		if !e.IsDir() || !ValidID(e.Name()) {
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
		fi, err := fileInfo(dir, segmentName(n))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		ix.Segments = append(ix.Segments, fi)
	}
	if ix.Manifest == nil {
		if fi, err := fileInfo(dir, manifestName); err == nil {
			ix.Manifest = &fi
		}
	}
	ix.State = Interrupted
	if err := writeIndex(dir, ix); err != nil {
		return err
	}
	s.log.Info("recording interrupted", "recording", id, "segments", len(ix.Segments))
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
		if e.IsDir() && ValidID(e.Name()) {
			n++
		}
	}
	return n, syncDir(s.dir)
}
