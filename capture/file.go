package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// The file:PATH source replays an MJPEG (+ optional 16-bit PCM) recording in
// Matroska or AVI format. The container is recognised by its magic bytes,
// never by the file name. Both readers stream: they hold one packet and a
// small read buffer at a time, and seek over elements they do not need (Cues,
// indexes, attachments), so multi-gigabyte files replay in a few MB of memory.

// replayMaxElement caps anything read into memory at once: a frame, an audio
// block or a header element such as Matroska Tracks or the AVI hdrl list.
// Larger sizes are treated as corruption.
const replayMaxElement = 64 << 20

// replayConvertHint tells the user how to turn any file into one that replays.
const replayConvertHint = "ffmpeg -i %s -c:v mjpeg -q:v 3 -c:a pcm_s16le OUT.mkv"

// errReplayClosed is returned by Next after Close.
var errReplayClosed = fmt.Errorf("replay file: %w", os.ErrClosed)

// replayDemuxer reads the packets of the tracks it reports, in file order,
// with PTS set to the content timestamp (from the start of the file's
// timeline). At the end of the file, including a file cut short, next returns
// io.EOF.
type replayDemuxer interface {
	tracks() []Track
	next() (Packet, error)
}

// replayUnsupportedError reports a codec or format that replay cannot pass
// on.
type replayUnsupportedError struct {
	what      string // e.g. "video codec V_MPEG4/ISO/AVC"
	supported string // e.g. "V_MJPEG"
}

func (e *replayUnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported (supported: %s)", e.what, e.supported)
}

// OpenFile opens a Matroska or AVI file holding MJPEG video and, optionally,
// signed 16-bit little-endian PCM audio, and replays it as a Source.
//
// The source reports the file's first video track and, if withAudio and the
// file has one, its first audio track. Packet timestamps are the file's,
// offset by the capture clock (Now) at the first call to Next. With Realtime
// pace Next waits until each packet's timestamp, as a live device would; with
// Fast it returns packets as fast as they are read. Next returns io.EOF at the
// end of the file, also when the file was cut short mid-write.
func OpenFile(path string, pace Pace, withAudio bool) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open file: %w", err)
	}
	d, err := newReplayDemuxer(f, withAudio)
	if err != nil {
		f.Close()
		var ue *replayUnsupportedError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("open file: %s: %w; convert with: "+replayConvertHint, path, err, replayShellQuote(path))
		}
		return nil, fmt.Errorf("open file: %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &fileSource{f: f, d: d, pace: pace, trk: d.tracks(), closed: ctx, close: cancel}, nil
}

// newReplayDemuxer recognises the container from its first bytes: the EBML
// magic 1A 45 DF A3 for Matroska, "RIFF" size "AVI " for AVI.
func newReplayDemuxer(r io.Reader, withAudio bool) (replayDemuxer, error) {
	s := newReplayStream(r)
	magic, err := s.br.Peek(12)
	if err != nil && !replayIsEOF(err) {
		return nil, fmt.Errorf("detect format: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return newMatroskaStream(s, withAudio)
	case len(magic) == 12 && string(magic[:4]) == "RIFF" && string(magic[8:]) == "AVI ":
		return newAVIStream(s, withAudio)
	case len(magic) == 12 && string(magic[:4]) == "RIFF":
		return nil, &replayUnsupportedError{what: fmt.Sprintf("RIFF form %q", magic[8:]), supported: "Matroska, AVI"}
	}
	if len(magic) == 0 {
		return nil, errors.New("file is empty")
	}
	return nil, &replayUnsupportedError{what: fmt.Sprintf("file format (starts with % x)", magic), supported: "Matroska, AVI"}
}

// fileSource paces a demuxer's packets onto the capture clock.
type fileSource struct {
	f    *os.File
	d    replayDemuxer
	pace Pace
	trk  []Track

	closed    context.Context // done once Close is called
	close     context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // serialises Next
	started bool
	base    time.Duration // Now() at the first Next
	pending Packet        // read but not yet delivered (ctx ended while waiting)
	hasPend bool
	err     error // sticky end of stream
}

func (s *fileSource) Tracks() []Track { return append([]Track(nil), s.trk...) }

func (s *fileSource) Next(ctx context.Context) (Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Err() != nil {
		return Packet{}, errReplayClosed
	}
	if s.err != nil {
		return Packet{}, s.err
	}
	if err := ctx.Err(); err != nil {
		return Packet{}, err
	}
	if !s.started {
		s.started, s.base = true, Now()
	}
	var p Packet
	if s.hasPend {
		p, s.hasPend = s.pending, false
	} else {
		var err error
		p, err = s.d.next()
		if err != nil {
			if s.closed.Err() != nil {
				return Packet{}, errReplayClosed
			}
			s.err = err
			return Packet{}, err
		}
		p.PTS += s.base
	}
	if s.pace == Realtime {
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(s.closed, cancel)
		err := sleepUntil(wctx, p.PTS)
		stop()
		cancel()
		if err != nil {
			s.pending, s.hasPend = p, true
			if s.closed.Err() != nil {
				return Packet{}, errReplayClosed
			}
			return Packet{}, ctx.Err()
		}
	}
	return p, nil
}

// Close closes the file. A Next waiting for a packet's time returns at once;
// one blocked reading the file returns when the read fails.
func (s *fileSource) Close() error {
	s.closeOnce.Do(func() {
		s.close()
		s.closeErr = s.f.Close()
	})
	return s.closeErr
}

// replayStream is a buffered reader that knows its offset and skips by
// seeking when the underlying reader can, so skipped elements are never read.
type replayStream struct {
	src io.Reader
	sk  io.Seeker // nil if src cannot seek
	br  *bufio.Reader
	pos int64 // offset of the next byte, from where src stood at the start
}

func newReplayStream(r io.Reader) *replayStream {
	size := 64 << 10
	if l, ok := r.(interface{ Len() int }); ok {
		// An in-memory reader (tests, fuzzing) needs no more than it holds.
		size = max(16, min(size, l.Len()))
	}
	s := &replayStream{src: r, br: bufio.NewReaderSize(r, size)}
	if sk, ok := r.(io.Seeker); ok {
		s.sk = sk
	}
	return s
}

func (s *replayStream) readByte() (byte, error) {
	b, err := s.br.ReadByte()
	if err == nil {
		s.pos++
	}
	return b, err
}

func (s *replayStream) readFull(p []byte) error {
	n, err := io.ReadFull(s.br, p)
	s.pos += int64(n)
	return err
}

// readSmall fills a header-sized p byte by byte: unlike readFull, it does not
// make p escape to the heap.
func (s *replayStream) readSmall(p []byte) error {
	for i := range p {
		b, err := s.br.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		p[i] = b
		s.pos++
	}
	return nil
}

// skip advances n bytes. Seeking past the end of a file is not an error here:
// the next read then reports io.EOF.
func (s *replayStream) skip(n int64) error {
	if n <= 0 {
		return nil
	}
	if buf := int64(s.br.Buffered()); s.sk != nil && n > buf {
		s.br.Discard(int(buf))
		if _, err := s.sk.Seek(n-buf, io.SeekCurrent); err != nil {
			return err
		}
		s.br.Reset(s.src)
		s.pos += n
		return nil
	}
	for n > 0 {
		c := min(n, 1<<30)
		d, err := s.br.Discard(int(c))
		s.pos += int64(d)
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// readBlob reads n bytes into a fresh slice. It grows the slice as data
// arrives, so a corrupt size in a short file cannot cause a large allocation.
func (s *replayStream) readBlob(n int64) ([]byte, error) {
	if n < 0 || n > replayMaxElement {
		return nil, fmt.Errorf("element of %d bytes exceeds the %d-byte limit", n, replayMaxElement)
	}
	const step = 1 << 20
	if n <= step {
		b := make([]byte, n)
		return b, s.readFull(b)
	}
	b := make([]byte, 0, step)
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(int64(2*cap(b)), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(s.br, b[len(b):cap(b)])
		s.pos += int64(m)
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// replayIsEOF says whether err means the data ended, cleanly or mid-element.
func replayIsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// replayEnd maps running out of data to io.EOF (a file cut short ends after its
// last complete packet) and prefixes any other error with op.
func replayEnd(op string, err error) error {
	if replayIsEOF(err) {
		return io.EOF
	}
	return fmt.Errorf("%s: %w", op, err)
}

// replayShellQuote quotes a path for the conversion hint if it needs it.
func replayShellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+,:@%", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// replayHeadError words a failure to read a file's headers: an unsupported
// codec as it is, a file cut short as such, anything else under op.
func replayHeadError(op, before string, err error) error {
	var ue *replayUnsupportedError
	if errors.As(err, &ue) {
		return err
	}
	if replayIsEOF(err) {
		return fmt.Errorf("%s: file ends before %s", op, before)
	}
	return fmt.Errorf("%s: %w", op, err)
}
