package demux

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxElement caps anything read into memory at once: a frame, an audio
// block or a header element such as Matroska Tracks or the AVI hdrl list.
// Larger sizes are treated as corruption.
const MaxElement = 64 << 20

// UnsupportedError reports a codec or format that a reader cannot pass on.
type UnsupportedError struct {
	What      string // e.g. "video codec V_MPEG4/ISO/AVC"
	Supported string // e.g. "V_MJPEG"
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported (supported: %s)", e.What, e.Supported)
}

// Stream is a buffered reader that knows its offset and skips by seeking
// when the underlying reader can, so skipped elements are never read.
type Stream struct {
	src io.Reader
	sk  io.Seeker // nil if src cannot seek
	br  *bufio.Reader
	Pos int64 // offset of the next byte, from where src stood at the start
}

// NewStream returns a Stream reading r from where it stands.
func NewStream(r io.Reader) *Stream {
	size := 64 << 10
	if l, ok := r.(interface{ Len() int }); ok {
		// An in-memory reader (tests, fuzzing) needs no more than it holds.
		size = max(16, min(size, l.Len()))
	}
	s := &Stream{src: r, br: bufio.NewReaderSize(r, size)}
	if sk, ok := r.(io.Seeker); ok {
		s.sk = sk
	}
	return s
}

// ReadByte reads one byte.
func (s *Stream) ReadByte() (byte, error) {
	b, err := s.br.ReadByte()
	if err == nil {
		s.Pos++
	}
	return b, err
}

// ReadFull fills p.
func (s *Stream) ReadFull(p []byte) error {
	n, err := io.ReadFull(s.br, p)
	s.Pos += int64(n)
	return err
}

// ReadSmall fills a header-sized p byte by byte: unlike ReadFull, it does not
// make p escape to the heap.
func (s *Stream) ReadSmall(p []byte) error {
	for i := range p {
		b, err := s.br.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		p[i] = b
		s.Pos++
	}
	return nil
}

// Skip advances n bytes. Seeking past the end of a file is not an error here:
// the next read then reports io.EOF.
func (s *Stream) Skip(n int64) error {
	if n <= 0 {
		return nil
	}
	if buf := int64(s.br.Buffered()); s.sk != nil && n > buf {
		s.br.Discard(int(buf))
		if _, err := s.sk.Seek(n-buf, io.SeekCurrent); err != nil {
			return err
		}
		s.br.Reset(s.src)
		s.Pos += n
		return nil
	}
	for n > 0 {
		c := min(n, 1<<30)
		d, err := s.br.Discard(int(c))
		s.Pos += int64(d)
		n -= int64(d)
		if err != nil {
			return err
		}
	}
	return nil
}

// Discard advances n bytes by reading them, never seeking: a stream that
// ends before them is io.ErrUnexpectedEOF.
func (s *Stream) Discard(n int64) error {
	for n > 0 {
		d, err := s.br.Discard(int(min(n, 1<<30)))
		s.Pos += int64(d)
		n -= int64(d)
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ReadBlob reads n bytes into a fresh slice. It grows the slice as data
// arrives, so a corrupt size in a short file cannot cause a large allocation.
func (s *Stream) ReadBlob(n int64) ([]byte, error) {
	if n < 0 || n > MaxElement {
		return nil, fmt.Errorf("element of %d bytes exceeds the %d-byte limit", n, MaxElement)
	}
	const step = 1 << 20
	if n <= step {
		b := make([]byte, n)
		return b, s.ReadFull(b)
	}
	b := make([]byte, 0, step)
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(int64(2*cap(b)), n))
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(s.br, b[len(b):cap(b)])
		s.Pos += int64(m)
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// IsEOF says whether err means the data ended, cleanly or mid-element.
func IsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// End maps running out of data to io.EOF (a file cut short ends after its
// last complete packet) and prefixes any other error with op.
func End(op string, err error) error {
	if IsEOF(err) {
		return io.EOF
	}
	return fmt.Errorf("%s: %w", op, err)
}

// HeadError words a failure to read a file's headers: an unsupported
// codec as it is, a file cut short as such, anything else under op.
func HeadError(op, before string, err error) error {
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		return err
	}
	if IsEOF(err) {
		return fmt.Errorf("%s: file ends before %s", op, before)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Printable quotes a codec name or FourCC taken from a file for an error.
func Printable(b []byte) string {
	s := strings.TrimRight(string(b), "\x00 ")
	for _, c := range s {
		if c < 0x20 || c > 0x7E {
			return fmt.Sprintf("%q", s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
