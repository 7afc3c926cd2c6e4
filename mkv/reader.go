package mkv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"attune.dev/attune/internal/demux"
)

// A Reader reads back a Matroska stream such as the LiveWriter writes (the
// decrypted concatenation of a recording's segments), or any Matroska file
// of MJPEG video and 16-bit PCM audio, one packet at a time, without pacing:
// it holds the headers and one packet in memory, so it streams files of any
// length.
type Reader struct {
	m   *mkvReader
	err error // sticky end of stream
}

// NewReader reads the stream's headers up to its first Cluster. The stream
// must hold a V_MJPEG video track; if withAudio, its first A_PCM/INT/LIT
// 16-bit audio track, if any, is delivered too. If r is an io.Seeker,
// elements that are not needed (other tracks' blocks, Cues, attachments) are
// seeked over. A codec that cannot be passed on is reported as a
// *demux.UnsupportedError.
func NewReader(r io.Reader, withAudio bool) (*Reader, error) {
	m, err := newMatroskaReader(r, withAudio)
	if err != nil {
		return nil, err
	}
	return &Reader{m: m}, nil
}

// Tracks returns the delivered tracks: the video track first, then the
// audio track if there is one.
func (s *Reader) Tracks() []Track { return append([]Track(nil), s.m.tracks()...) }

// Next returns the next packet in stream order, with PTS the block's
// timestamp (cluster timecode plus relative timecode, in TimecodeScale
// units). Data belongs to the caller (Reuse gives it back). At the end of
// the stream Next returns io.EOF, also when the stream is cut short mid-element
// (an interrupted recording): the packets before the cut are all delivered.
func (s *Reader) Next() (Packet, error) {
	if s.err != nil {
		return Packet{}, s.err
	}
	p, err := s.m.next()
	if err != nil {
		s.err = err // io.EOF, or an error naming the offset of the damage
		return Packet{}, err
	}
	return p, nil
}

// Reuse gives back the Data of a packet Next returned, once the caller is
// done with it: a later packet's data is read into it (so a stream's
// packets need not each be allocated afresh). At most maxSpare are kept.
func (s *Reader) Reuse(b []byte) {
	s.m.reusing = true
	if cap(b) > 0 && len(s.m.spare) < maxSpare {
		s.m.spare = append(s.m.spare, b[:0])
	}
}

// maxSpare is how many buffers Reuse keeps.
const maxSpare = 8

// SkipVideoData makes Next deliver video packets without their data, the
// bytes read past rather than kept in memory: Data is nil, and DataAt says
// where they lie (to index a stream whose frames are fetched later).
func (s *Reader) SkipVideoData() { s.m.noVideo = true }

// DataAt is where the data of the packet Next last returned lies in the
// stream: its offset from the start of the stream, and its size.
func (s *Reader) DataAt() (off, size int64) { return s.m.dataOff, s.m.dataSize }

// HeadSize is the length of the stream's headers: the offset of its first
// Cluster. Those bytes followed by any run of whole clusters of the same
// stream read as a stream of their own.
func (s *Reader) HeadSize() int64 {
	if s.m.hasPend {
		return s.m.pending.off
	}
	return s.m.s.Pos
}

// TimecodeScale is the length of one timecode tick.
func (s *Reader) TimecodeScale() time.Duration { return time.Duration(s.m.scale) }

// ClusterTime reads the timecode of the Cluster that b starts with, in a
// stream of the given TimecodeScale (the plaintext of a recording's
// segment after the first starts so: docs/FORMAT.md).
func ClusterTime(b []byte, scale time.Duration) (time.Duration, error) {
	s := demux.NewStream(bytes.NewReader(b))
	e, err := mkvrReadElem(s)
	if err != nil || e.id != eidCluster {
		return 0, errors.New("not the start of a cluster")
	}
	for {
		c, err := mkvrReadElem(s)
		if err != nil {
			return 0, fmt.Errorf("cluster: no timecode: %v", err)
		}
		if c.id == eidTimecode {
			if c.size < 1 || c.size > 8 {
				return 0, errors.New("cluster: malformed timecode")
			}
			v := make([]byte, c.size)
			if err := s.ReadFull(v); err != nil {
				return 0, fmt.Errorf("cluster: timecode: %v", err)
			}
			t, err := mkvrUint(v)
			if err != nil {
				return 0, err
			}
			return time.Duration(t) * scale, nil
		}
		if c.size < 0 {
			return 0, errors.New("cluster: no timecode before its blocks")
		}
		if err := s.Skip(c.size); err != nil {
			return 0, fmt.Errorf("cluster: no timecode: %v", err)
		}
	}
}
