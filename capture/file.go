package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"attune.dev/attune/avi"
	"attune.dev/attune/internal/demux"
	"attune.dev/attune/mkv"
)

// The file:PATH source replays an MJPEG (+ optional 16-bit PCM) recording in
// Matroska or AVI format. The container is recognised by its magic bytes,
// never by the file name. Both readers stream: they hold one packet and a
// small read buffer at a time, and seek over elements they do not need (Cues,
// indexes, attachments), so multi-gigabyte files replay in a few MB of memory.

// replayConvertHint tells the user how to turn any file into one that replays.
const replayConvertHint = "ffmpeg -i %s -c:v mjpeg -q:v 3 -c:a pcm_s16le OUT.mkv"

// errReplayClosed is returned by Next after Close.
var errReplayClosed = fmt.Errorf("replay file: %w", os.ErrClosed)

// replayDemuxer reads the packets of the tracks it reports, in file order,
// with PTS set to the content timestamp (from the start of the file's
// timeline). At the end of the file, including a file cut short, Next returns
// io.EOF. mkv.Reader and avi.Reader are replayDemuxers.
type replayDemuxer interface {
	Tracks() []mkv.Track
	Next() (mkv.Packet, error)
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
		var ue *demux.UnsupportedError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("open file: %s: %w; convert with: "+replayConvertHint, path, err, replayShellQuote(path))
		}
		return nil, fmt.Errorf("open file: %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &fileSource{f: f, d: d, pace: pace, trk: d.Tracks(), closed: ctx, close: cancel}, nil
}

// newReplayDemuxer recognises the container from its first bytes: the EBML
// magic 1A 45 DF A3 for Matroska, "RIFF" size "AVI " for AVI. It reads r
// from its start.
func newReplayDemuxer(r io.ReadSeeker, withAudio bool) (replayDemuxer, error) {
	magic := make([]byte, 12)
	n, err := io.ReadFull(r, magic)
	if err != nil && !demux.IsEOF(err) {
		return nil, fmt.Errorf("detect format: %w", err)
	}
	magic = magic[:n]
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("detect format: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		d, err := mkv.NewReader(r, withAudio)
		if err != nil {
			return nil, err
		}
		return d, nil
	case len(magic) == 12 && string(magic[:4]) == "RIFF" && string(magic[8:]) == "AVI ":
		d, err := avi.NewReader(r, withAudio)
		if err != nil {
			return nil, err
		}
		return d, nil
	case len(magic) == 12 && string(magic[:4]) == "RIFF":
		return nil, &demux.UnsupportedError{What: fmt.Sprintf("RIFF form %q", magic[8:]), Supported: "Matroska, AVI"}
	}
	if len(magic) == 0 {
		return nil, errors.New("file is empty")
	}
	return nil, &demux.UnsupportedError{What: fmt.Sprintf("file format (starts with % x)", magic), Supported: "Matroska, AVI"}
}

// fileSource paces a demuxer's packets onto the capture clock.
type fileSource struct {
	f    *os.File
	d    replayDemuxer
	pace Pace
	trk  []mkv.Track

	closed    context.Context // done once Close is called
	close     context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex // serialises Next
	started bool
	base    time.Duration // Now() at the first Next
	pending mkv.Packet    // read but not yet delivered (ctx ended while waiting)
	hasPend bool
	err     error // sticky end of stream
}

func (s *fileSource) Tracks() []mkv.Track { return append([]mkv.Track(nil), s.trk...) }

func (s *fileSource) Next(ctx context.Context) (mkv.Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Err() != nil {
		return mkv.Packet{}, errReplayClosed
	}
	if s.err != nil {
		return mkv.Packet{}, s.err
	}
	if err := ctx.Err(); err != nil {
		return mkv.Packet{}, err
	}
	if !s.started {
		s.started, s.base = true, Now()
	}
	var p mkv.Packet
	if s.hasPend {
		p, s.hasPend = s.pending, false
	} else {
		var err error
		p, err = s.d.Next()
		if err != nil {
			if s.closed.Err() != nil {
				return mkv.Packet{}, errReplayClosed
			}
			s.err = err
			return mkv.Packet{}, err
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
				return mkv.Packet{}, errReplayClosed
			}
			return mkv.Packet{}, ctx.Err()
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

// replayShellQuote quotes a path for the conversion hint if it needs it.
func replayShellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+,:@%", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
