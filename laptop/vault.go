package laptop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"attune.dev/attune/storage"
)

// A RecordingStream decrypts a vault recording's segments one after another and
// hands out each one's plaintext only once its seal checks out (docs/
// FORMAT.md, "The seal chain"): its number, its recording and its link to
// the segment before it. A segment that fails is an error, before any of
// its bytes.
//
// Segments are decrypted and their seals checked ahead of the reader, by
// streamWorkers goroutines at most streamAhead segments ahead (each one
// whole in memory, about a second of footage); the links between them are
// checked in order as the reader reaches them. Close stops the work.
type RecordingStream struct {
	src  *Segments
	segs []int // segment numbers, in order

	start sync.Once
	order chan *segmentJob // the segments being decrypted, in order
	quit  chan struct{}
	wg    sync.WaitGroup

	prev   *storage.Seal // the seal of the segment before cur, if held
	pn     int
	cur    *segmentJob
	off    int
	err    error          // sticky
	read   int64          // bytes handed out
	starts []segmentStart // where each segment reached began in the stream
	loaded atomic.Int32   // segments the workers decrypted
}

// segmentStart is where a segment's plaintext begins in the stream.
type segmentStart struct {
	n   int
	off int64
}

// Locate says where byte off of the stream (one already read) lies: in
// segment n's plaintext, at offset at. A run of bytes from off on lies in
// that segment as long as at+size is at most end, the segment's length.
func (s *RecordingStream) Locate(off int64) (n int, at, end int64, ok bool) {
	i := sort.Search(len(s.starts), func(i int) bool { return s.starts[i].off > off }) - 1
	if i < 0 || off >= s.read {
		return 0, 0, 0, false
	}
	next := s.read
	if i+1 < len(s.starts) {
		next = s.starts[i+1].off
	} else if s.cur != nil {
		next = s.starts[i].off + int64(len(s.cur.buf))
	}
	st := s.starts[i]
	return st.n, off - st.off, next - st.off, true
}

// segmentJob is one segment decrypted ahead: its plaintext without the
// seal, or why it failed.
type segmentJob struct {
	n    int
	buf  []byte
	seal storage.Seal
	err  error
	done chan struct{}
}

const (
	streamWorkers = 2
	streamAhead   = 4
)

func (s *RecordingStream) Read(p []byte) (int, error) {
	select {
	case <-s.quit:
		return 0, errors.New("read of a closed recording stream")
	default:
	}
	s.start.Do(s.run)
	for s.cur == nil || s.off == len(s.cur.buf) {
		if s.err != nil {
			return 0, s.err
		}
		if s.cur != nil {
			putBuf(&s.cur.buf)
			s.cur = nil
		}
		j, ok := <-s.order
		if !ok {
			s.err = io.EOF
			return 0, io.EOF
		}
		<-j.done
		if err := s.link(j); err != nil {
			s.err = err
			return 0, err
		}
		s.cur, s.off = j, 0
		s.starts = append(s.starts, segmentStart{j.n, s.read})
	}
	c := copy(p, s.cur.buf[s.off:])
	s.off += c
	s.read += int64(c)
	return c, nil
}

// run starts the workers: the segments go to them in order, and to the
// reader in the same order.
func (s *RecordingStream) run() {
	s.order = make(chan *segmentJob, streamAhead)
	work := make(chan *segmentJob)
	s.wg.Add(1 + streamWorkers)
	go func() {
		defer s.wg.Done()
		defer close(s.order)
		defer close(work)
		for _, n := range s.segs {
			j := &segmentJob{n: n, done: make(chan struct{})}
			select {
			case s.order <- j:
			case <-s.quit:
				return
			}
			select {
			case work <- j:
			case <-s.quit:
				return
			}
		}
	}()
	for range streamWorkers {
		go func() {
			defer s.wg.Done()
			for j := range work {
				s.loaded.Add(1)
				j.buf, j.seal, j.err = s.src.load(j.n, true)
				close(j.done)
			}
		}()
	}
}

// load decrypts segment n whole and checks its seal; the plaintext is
// returned without the seal, in a buffer from the segment buffers' pool
// (getBuf) if pooled, for the caller to hand back (putBuf).
func (s *Segments) load(n int, pooled bool) ([]byte, storage.Seal, error) {
	name := storage.SegmentName(n)
	f, err := os.Open(filepath.Join(s.vr.Dir, name))
	if err != nil {
		return nil, storage.Seal{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, storage.Seal{}, err
	}
	// Decrypted at once into a buffer of the plaintext's size: age's
	// stream reader would allocate a buffer for each 64 KiB chunk.
	r, size, err := age.DecryptReaderAt(f, fi.Size(), s.id)
	if err != nil {
		return nil, storage.Seal{}, fmt.Errorf("decrypt %s: %w", name, err)
	}
	var buf []byte
	if pooled {
		buf = *getBuf(int(size))
	} else {
		buf = make([]byte, size)
	}
	if err := readWhole(r, buf); err != nil {
		return nil, storage.Seal{}, fmt.Errorf("decrypt %s: %w", name, err)
	}
	seal, serr := storage.ReadSeal(buf)
	if msg := s.ck.verify(&seal, serr, s.vr.ID, n); msg != "" {
		return nil, seal, fmt.Errorf("segment %d in the vault: %s", n, msg)
	}
	return buf[:len(buf)-storage.SealSize], seal, nil
}

// link checks, in order, that segment j follows the one before it.
func (s *RecordingStream) link(j *segmentJob) error {
	if j.err != nil {
		return j.err
	}
	if s.prev != nil && s.pn == j.n-1 {
		if err := j.seal.Link(s.prev); err != nil {
			return fmt.Errorf("segment %d in the vault: %v", j.n, err)
		}
	}
	seal := j.seal
	s.prev, s.pn = &seal, j.n
	return nil
}

// Close stops the decryption ahead and waits for it.
func (s *RecordingStream) Close() error {
	s.start.Do(func() {}) // never started: nothing to stop
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	s.wg.Wait()
	return nil
}

// Stream returns the decrypted stream of a vault recording: the segments
// it holds, in order, each checked against the recording's seal chain (a
// gap where a segment is missing; Gaps lists them).
func (vr VaultRecording) Stream(id age.Identity) (*RecordingStream, error) {
	s, err := vr.Segments(id, nil)
	if err != nil {
		return nil, err
	}
	return s.Stream(0), nil
}

// Segments decrypts a vault recording's segments, each checked against its
// seal, with the seal key read from the manifest once.
type Segments struct {
	vr VaultRecording
	id age.Identity
	ck *chainKey
}

// Segments opens the recording's segments for reading; m is its manifest
// if it was decrypted already (nil: decrypt it).
func (vr VaultRecording) Segments(id age.Identity, m *storage.Manifest) (*Segments, error) {
	if m == nil {
		var err error
		if m, err = vr.Manifest(id); err != nil {
			return nil, err
		}
	}
	ck := manifestChain(m, vr.ID)
	if ck.key == nil {
		return nil, fmt.Errorf("recording %s: %s", vr.ID, ck.problem)
	}
	return &Segments{vr: vr, id: id, ck: ck}, nil
}

// Stream is the stream of the segments the vault holds from segment first
// on (see VaultRecording.Stream): from a later one than 0, whole clusters,
// which follow the headers at the start of segment 0 (mkv.Reader.HeadSize).
func (s *Segments) Stream(first int) *RecordingStream {
	held := s.vr.HeldSegments()
	i, _ := slices.BinarySearch(held, first)
	return &RecordingStream{src: s, segs: held[i:], quit: make(chan struct{})}
}

// Segment decrypts segment n alone and checks its seal: its number and its
// recording (the links to its neighbours are checked by Stream). It
// returns the plaintext without the seal.
func (s *Segments) Segment(n int) ([]byte, error) {
	b, _, err := s.load(n, false)
	return b, err
}

// Head decrypts the first size bytes of segment n's plaintext alone (age
// decrypts its 64 KiB chunks as they are read), without checking the
// segment's seal: a hint, such as the time the segment starts, never
// footage.
func (s *Segments) Head(n, size int) ([]byte, error) {
	name := storage.SegmentName(n)
	f, err := os.Open(filepath.Join(s.vr.Dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := age.Decrypt(f, s.id)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", name, err)
	}
	b := make([]byte, size)
	k, err := io.ReadFull(r, b)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("decrypt %s: %w", name, err)
	}
	return b[:k], nil
}

// HeldSegments are the numbers of the recording's segments the vault
// holds, in order.
func (vr VaultRecording) HeldSegments() []int {
	var held []int
	if vr.Index != nil {
		for n := range vr.Index.Segments {
			if fileExists(filepath.Join(vr.Dir, storage.SegmentName(n))) {
				held = append(held, n)
			}
		}
	}
	return held
}

// Held counts the recording's segments the vault holds.
func (vr VaultRecording) Held() int { return len(vr.HeldSegments()) }

// Synced reports whether the vault holds the whole recording: it has ended
// on the device, and every segment and the final manifest are here.
func (vr VaultRecording) Synced() bool {
	if vr.Index == nil || vr.Index.State == storage.Recording || vr.Held() != len(vr.Index.Segments) {
		return false
	}
	_, err := os.Stat(filepath.Join(vr.Dir, storage.ManifestName))
	return err == nil
}

// Manifest decrypts the recording's manifest.
func (vr VaultRecording) Manifest(id age.Identity) (*storage.Manifest, error) {
	f, err := os.Open(filepath.Join(vr.Dir, storage.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", vr.ID, err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", vr.ID, err)
	}
	var m storage.Manifest
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %v", vr.ID, err)
	}
	return &m, nil
}

// MarksOf converts a manifest's marks.
func MarksOf(m *storage.Manifest) []Mark {
	var out []Mark
	for _, mk := range m.Marks {
		out = append(out, Mark{Offset: time.Duration(mk.Offset * float64(time.Second))})
	}
	return out
}

// Container is a file format a recording is exported in.
type Container string

// Matroska is the container ExportRecording writes.
const Matroska Container = "matroska"

// ContainerFor picks the container of an export file from its name's
// extension: .mkv or .mka is Matroska; any other name is refused, with an
// error that says what to use.
func ContainerFor(path string) (Container, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".mkv", ".mka":
		return Matroska, nil
	case "":
		return "", fmt.Errorf("export: %s: name the file FILE.mkv (attune exports Matroska, which any player opens)", path)
	}
	return "", fmt.Errorf("export: %s: attune exports Matroska only (%s is not supported): name the file %s", path, ext, strings.TrimSuffix(path, ext)+".mkv")
}

// ExportRecording decrypts a vault recording into a finalized file at path
// in the container its name asks for (see ContainerFor), written under a
// temporary name and renamed when complete.
//
// A recording with segments missing from the vault (see Gaps) is refused
// with an error wrapping ErrGaps, unless allowGaps: then the film jumps
// over them and ExportInfo.Gaps names them.
func (h *Home) ExportRecording(ctx context.Context, vr VaultRecording, id age.Identity, path string, allowGaps bool) (ExportInfo, *storage.Manifest, error) {
	return h.exportRecording(ctx, vr, id, path, "", allowGaps)
}

// exportRecording is ExportRecording with a Matroska title.
func (h *Home) exportRecording(ctx context.Context, vr VaultRecording, id age.Identity, path, title string, allowGaps bool) (ExportInfo, *storage.Manifest, error) {
	if _, err := ContainerFor(path); err != nil {
		return ExportInfo{}, nil, err
	}
	m, err := vr.Manifest(id)
	if err != nil {
		return ExportInfo{}, nil, err
	}
	gaps, err := vr.Gaps(id, m)
	if err != nil {
		return ExportInfo{}, m, fmt.Errorf("export %s: %w", vr.ID, err)
	}
	if len(gaps) > 0 && !allowGaps {
		return ExportInfo{Gaps: gaps}, m, fmt.Errorf("export %s: %w: %s; run attune sync to fetch them, or export the rest with --allow-gaps (the film then jumps over them)", vr.ID, ErrGaps, describeGaps(gaps))
	}
	stream, err := vr.Stream(id)
	if err != nil {
		return ExportInfo{}, m, fmt.Errorf("export %s: %w", vr.ID, err)
	}
	defer stream.Close()
	tmp := path + ".part"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return ExportInfo{}, m, fmt.Errorf("export: %v", err)
	}
	opts := ExportOptions{Title: title}
	if m.ClockTrusted {
		opts.Date = m.Started
	}
	info, err := Export(ctx, stream, MarksOf(m), out, opts)
	info.Gaps = gaps
	if err != nil && !errors.Is(err, ErrDamaged) {
		out.Close()
		os.Remove(tmp)
		return info, m, fmt.Errorf("export %s: %w", vr.ID, err)
	}
	if serr := out.Sync(); serr != nil {
		err = serr
	}
	out.Close()
	if rerr := os.Rename(tmp, path); rerr != nil {
		return info, m, fmt.Errorf("export: %v", rerr)
	}
	return info, m, err
}
