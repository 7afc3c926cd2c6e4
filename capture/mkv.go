package capture

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/at-wat/ebml-go"
)

// A Sink receives the plaintext Matroska stream. Flush marks a flush point:
// everything written so far forms complete Matroska elements and must be
// sealed before Flush returns. The muxer calls Flush just before each new
// Cluster, so every sealed piece after the first starts with a Cluster.
type Sink interface {
	io.Writer
	Flush() error
}

// Matroska structures, declared here rather than taken from ebml-go's webm
// package because webm's Audio lacks BitDepth and DocType must be "matroska"
// for V_MJPEG and PCM.
type mkvEBMLHeader struct {
	EBMLVersion        uint64 `ebml:"EBMLVersion"`
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeVersion     uint64 `ebml:"EBMLDocTypeVersion"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

type mkvInfo struct {
	TimecodeScale uint64 `ebml:"TimecodeScale"`
	MuxingApp     string `ebml:"MuxingApp"`
	WritingApp    string `ebml:"WritingApp"`
}

type mkvVideo struct {
	PixelWidth  uint64 `ebml:"PixelWidth"`
	PixelHeight uint64 `ebml:"PixelHeight"`
}

type mkvAudio struct {
	SamplingFrequency float64 `ebml:"SamplingFrequency"`
	Channels          uint64  `ebml:"Channels"`
	BitDepth          uint64  `ebml:"BitDepth,omitempty"`
}

type mkvTrackEntry struct {
	TrackNumber     uint64    `ebml:"TrackNumber"`
	TrackUID        uint64    `ebml:"TrackUID"`
	FlagLacing      uint64    `ebml:"FlagLacing"`
	CodecID         string    `ebml:"CodecID"`
	TrackType       uint64    `ebml:"TrackType"`
	DefaultDuration uint64    `ebml:"DefaultDuration,omitempty"`
	Video           *mkvVideo `ebml:"Video,omitempty"`
	Audio           *mkvAudio `ebml:"Audio,omitempty"`
}

type mkvHead struct {
	Header  mkvEBMLHeader `ebml:"EBML"`
	Segment struct {
		Info   mkvInfo `ebml:"Info"`
		Tracks struct {
			TrackEntry []mkvTrackEntry `ebml:"TrackEntry"`
		} `ebml:"Tracks"`
	} `ebml:"Segment,size=unknown"`
}

type mkvClusterStart struct {
	Cluster struct {
		Timecode uint64 `ebml:"Timecode"`
	} `ebml:"Cluster,size=unknown"`
}

// TimecodeScale is the Matroska timestamp unit the muxer writes: 1 ms.
const TimecodeScale = time.Millisecond

// MuxerOptions tunes the muxer.
type MuxerOptions struct {
	// ClusterDuration is the target length of a Cluster, and so of a sealed
	// segment. Default 1 s.
	ClusterDuration time.Duration
	// WritingApp is recorded in the Info element.
	WritingApp string
}

// A Muxer writes packets as one live Matroska stream: an unknown-size
// Segment of unknown-size Clusters, each holding SimpleBlocks in the order
// they are given (the Pipeline interleaves them by timestamp).
type Muxer struct {
	w      Sink
	opts   MuxerOptions
	tracks []Track
	number map[Kind]uint64 // Matroska track number per kind

	started      bool
	haveVideo    bool
	clusterStart time.Duration
	blockHdr     [16]byte
	bytes        int64
}

// NewMuxer returns a muxer for the given tracks (at most one per kind).
func NewMuxer(w Sink, tracks []Track, opts MuxerOptions) (*Muxer, error) {
	if opts.ClusterDuration <= 0 {
		opts.ClusterDuration = time.Second
	}
	if opts.WritingApp == "" {
		opts.WritingApp = "attuned"
	}
	m := &Muxer{w: w, opts: opts, number: map[Kind]uint64{}}
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
func (m *Muxer) Bytes() int64 { return m.bytes }

func (m *Muxer) writeHead() error {
	var h mkvHead
	h.Header = mkvEBMLHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2,
	}
	h.Segment.Info = mkvInfo{
		TimecodeScale: uint64(TimecodeScale / time.Nanosecond),
		MuxingApp:     "attune",
		WritingApp:    m.opts.WritingApp,
	}
	for i, t := range m.tracks {
		e := mkvTrackEntry{TrackNumber: uint64(i + 1), TrackUID: uint64(i + 1), CodecID: t.Codec}
		switch t.Kind {
		case Video:
			e.TrackType = 1
			e.Video = &mkvVideo{PixelWidth: uint64(t.Width), PixelHeight: uint64(t.Height)}
			if t.FPS > 0 {
				e.DefaultDuration = uint64(float64(time.Second) / t.FPS)
			}
		case Audio:
			e.TrackType = 2
			e.Audio = &mkvAudio{SamplingFrequency: float64(t.SampleRate), Channels: uint64(t.Channels), BitDepth: uint64(t.BitDepth)}
		}
		h.Segment.Tracks.TrackEntry = append(h.Segment.Tracks.TrackEntry, e)
	}
	return ebml.Marshal(&h, countingWriter{m})
}

type countingWriter struct{ m *Muxer }

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.m.w.Write(p)
	c.m.bytes += int64(n)
	return n, err
}

func (m *Muxer) startCluster(at time.Duration) error {
	var c mkvClusterStart
	c.Cluster.Timecode = uint64(at / TimecodeScale)
	m.clusterStart = time.Duration(c.Cluster.Timecode) * TimecodeScale
	return ebml.Marshal(&c, countingWriter{m})
}

// WritePacket appends p, whose PTS counts from the start of the recording.
// Before a packet that would make the current Cluster longer than the
// cluster duration it calls the sink's Flush and opens a new Cluster: at a
// video frame when there is video, or at any packet once the cluster is
// twice as long (video stalled).
func (m *Muxer) WritePacket(p Packet) error {
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
		m.started = true
	} else {
		age := p.PTS - m.clusterStart
		cut := age >= m.opts.ClusterDuration && p.Key && (p.Kind == Video || !m.haveVideo)
		if age >= 2*m.opts.ClusterDuration {
			cut = true
		}
		if cut {
			if err := m.w.Flush(); err != nil {
				return err
			}
			if err := m.startCluster(p.PTS); err != nil {
				return fmt.Errorf("mux: %w", err)
			}
		}
	}
	rel := (p.PTS - m.clusterStart) / TimecodeScale
	if rel < -32768 || rel > 32767 {
		// A packet far out of order; Matroska cannot place it in this cluster.
		return nil
	}
	return m.writeBlock(num, int16(rel), p.Key, p.Data)
}

// writeBlock writes one SimpleBlock. The 4-byte block header and the EBML
// element header are built here so the frame itself is written straight
// through without being copied into a marshalling buffer.
func (m *Muxer) writeBlock(track uint64, rel int16, key bool, data []byte) error {
	b := m.blockHdr[:0]
	b = append(b, 0xA3) // SimpleBlock
	size := uint64(4 + len(data))
	b = appendVintSize(b, size)
	b = append(b, 0x80|byte(track)) // track number as a 1-byte vint (tracks 1..127)
	b = append(b, byte(uint16(rel)>>8), byte(uint16(rel)))
	var flags byte
	if key {
		flags |= 0x80
	}
	b = append(b, flags)
	if _, err := (countingWriter{m}).Write(b); err != nil {
		return err
	}
	_, err := (countingWriter{m}).Write(data)
	return err
}

// appendVintSize appends an EBML data size in 8 bytes (always valid, fixed
// width keeps the header cheap to build).
func appendVintSize(b []byte, n uint64) []byte {
	return append(b, 0x01, byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Close ends the stream with a last flush point.
func (m *Muxer) Close() error {
	if !m.started {
		return nil
	}
	return m.w.Flush()
}
