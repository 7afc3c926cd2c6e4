package mkv

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// A Sink receives the live Matroska stream. Flush marks a flush point:
// everything written so far forms complete Matroska elements and must be
// sealed before Flush returns. The live writer calls Flush just before each
// new Cluster, so every sealed piece after the first starts with a Cluster.
type Sink interface {
	io.Writer
	Flush() error
}

// LiveOptions tunes the live writer.
type LiveOptions struct {
	// ClusterDuration is the target length of a Cluster, and so of a sealed
	// segment. Default 1 s.
	ClusterDuration time.Duration
	// FirstCluster is the target length of the first Cluster, shorter so
	// that the start of a recording is sealed soon after the button is
	// pressed. Default FirstCluster; never longer than ClusterDuration.
	FirstCluster time.Duration
	// WritingApp is recorded in the Info element.
	WritingApp string
}

// FirstCluster is the default length of a live stream's first Cluster.
const FirstCluster = 250 * time.Millisecond

// A LiveWriter writes packets as one live Matroska stream: an unknown-size
// Segment of unknown-size Clusters, each holding SimpleBlocks in the order
// they are given (the caller interleaves them by timestamp).
type LiveWriter struct {
	sink   Sink
	w      ebmlWriter // writes to sink, counting
	opts   LiveOptions
	tracks []Track
	number map[Kind]uint64 // Matroska track number per kind

	started      bool
	haveVideo    bool
	clusterStart time.Duration
	clusterLen   time.Duration // the current Cluster's target length
	hdr          [24]byte
}

// NewLiveWriter returns a live writer for the given tracks (at most one per
// kind): MJPEG video and 16-bit PCM audio.
func NewLiveWriter(w Sink, tracks []Track, opts LiveOptions) (*LiveWriter, error) {
	if opts.ClusterDuration <= 0 {
		opts.ClusterDuration = time.Second
	}
	if opts.FirstCluster <= 0 {
		opts.FirstCluster = FirstCluster
	}
	opts.FirstCluster = min(opts.FirstCluster, opts.ClusterDuration)
	if opts.WritingApp == "" {
		opts.WritingApp = "attuned"
	}
	m := &LiveWriter{sink: w, w: ebmlWriter{w: w}, opts: opts, number: map[Kind]uint64{}}
	for _, t := range tracks {
		if _, dup := m.number[t.Kind]; dup {
			return nil, fmt.Errorf("mux: more than one %v track", t.Kind)
		}
		switch {
		case t.Kind == Video && t.Codec == CodecMJPEG:
			if t.Width <= 0 || t.Height <= 0 {
				return nil, errors.New("mux: video track without a size")
			}
			m.haveVideo = true
		case t.Kind == Audio && t.Codec == CodecPCMS16:
			if t.SampleRate <= 0 || t.Channels <= 0 {
				return nil, errors.New("mux: audio track without a sample rate or channel count")
			}
		default:
			return nil, fmt.Errorf("mux: unsupported %v codec %q", t.Kind, t.Codec)
		}
		m.tracks = append(m.tracks, t)
		m.number[t.Kind] = uint64(len(m.tracks))
	}
	if len(m.tracks) == 0 {
		return nil, errors.New("mux: no tracks")
	}
	return m, nil
}

// Bytes is the number of bytes written so far.
func (m *LiveWriter) Bytes() int64 { return m.w.pos }

// writeHead writes the EBML header, the start of an unknown-size Segment,
// Info and Tracks.
func (m *LiveWriter) writeHead() error {
	if err := m.w.marshal(&theHeader); err != nil {
		return err
	}
	if _, err := m.w.Write(appendUnknownStart(m.hdr[:0], eidSegment)); err != nil {
		return err
	}
	info := liveInfoElem{liveInfo{
		TimecodeScale: uint64(TimecodeScale / time.Nanosecond),
		MuxingApp:     "attune",
		WritingApp:    m.opts.WritingApp,
	}}
	if err := m.w.marshal(&info); err != nil {
		return err
	}
	var frameDur time.Duration
	for _, t := range m.tracks {
		if t.Kind == Video && t.FPS > 0 {
			frameDur = time.Duration(float64(time.Second) / t.FPS)
		}
	}
	te := trackEntries(m.tracks, "", frameDur)
	return m.w.marshal(&te)
}

// startCluster writes the start of an unknown-size Cluster and its Timecode.
func (m *LiveWriter) startCluster(at time.Duration) error {
	tc := uint64(at / TimecodeScale)
	m.clusterStart = time.Duration(tc) * TimecodeScale
	b := appendUnknownStart(m.hdr[:0], eidCluster)
	_, err := m.w.Write(appendUintElem(b, eidTimecode, tc))
	return err
}

// WritePacket appends p, whose PTS counts from the start of the recording.
// Before a packet that would make the current Cluster longer than the
// cluster duration (FirstCluster for the first) it calls the sink's Flush and opens a new Cluster: at a
// video frame when there is video, or at any packet once the cluster is
// twice as long (video stalled).
func (m *LiveWriter) WritePacket(p Packet) error {
	num, ok := m.number[p.Kind]
	if !ok {
		return fmt.Errorf("mux: no %v track", p.Kind)
	}
	if p.PTS < 0 {
		p.PTS = 0
	}
	if !m.started {
		if err := m.writeHead(); err != nil {
			return fmt.Errorf("mux: %w", err)
		}
		if err := m.startCluster(p.PTS); err != nil {
			return fmt.Errorf("mux: %w", err)
		}
		m.started, m.clusterLen = true, m.opts.FirstCluster
	} else {
		age := p.PTS - m.clusterStart
		cut := age >= m.clusterLen && p.Key && (p.Kind == Video || !m.haveVideo)
		if age >= 2*m.clusterLen {
			cut = true
		}
		if cut {
			if err := m.sink.Flush(); err != nil {
				return err
			}
			if err := m.startCluster(p.PTS); err != nil {
				return fmt.Errorf("mux: %w", err)
			}
			m.clusterLen = m.opts.ClusterDuration
		}
	}
	rel := (p.PTS - m.clusterStart) / TimecodeScale
	if rel < -32768 || rel > 32767 {
		// A packet far out of order; Matroska cannot place it in this cluster.
		return nil
	}
	// The frame itself is written straight through, not copied.
	if _, err := m.w.Write(appendSimpleBlock(m.hdr[:0], num, int16(rel), p.Key, len(p.Data), true)); err != nil {
		return err
	}
	_, err := m.w.Write(p.Data)
	return err
}

// Close ends the stream with a last flush point.
func (m *LiveWriter) Close() error {
	if !m.started {
		return nil
	}
	return m.sink.Flush()
}
