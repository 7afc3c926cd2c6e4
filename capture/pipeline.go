package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"time"

	"attune.dev/attune/mkv"
)

// RecordOptions bounds one recording.
type RecordOptions struct {
	// MaxDuration ends the recording at the first packet at or past it.
	// Zero means no limit.
	MaxDuration time.Duration
	// ClusterDuration is the flush interval (default 1 s).
	ClusterDuration time.Duration
	// MaxSkew is how long, in wall time, the pipeline waits for a lagging
	// live source before writing the others' packets without it. Default 1 s.
	MaxSkew time.Duration
	// WritingApp is recorded in the stream.
	WritingApp string
}

// Stats summarises a recording.
type Stats struct {
	VideoFrames  int
	AudioSamples int64
	Duration     time.Duration // PTS of the last packet written
	Bytes        int64         // plaintext Matroska bytes
	FirstVideo   time.Duration // PTS of the first video frame, -1 if none
	FirstAudio   time.Duration // PTS of the first audio packet, -1 if none
	Ended        string        // why it ended: "stopped", "max-duration", "end-of-source", "error"
	// AudioOverruns is how often the microphone's buffer filled before it
	// was read (sound lost; the stamps show the gap). Sources that count
	// them have an Overruns() int method.
	AudioOverruns int
	// VideoDropped is how many frames the camera's driver dropped before
	// they were read (gaps in its frame counter). Sources that count them
	// have a DriverDropped() int method.
	VideoDropped int
}

// Tracks collects the tracks of several sources, refusing two of one kind.
func Tracks(srcs []Source) ([]mkv.Track, error) {
	var out []mkv.Track
	seen := map[mkv.Kind]bool{}
	for _, s := range srcs {
		for _, t := range s.Tracks() {
			if seen[t.Kind] {
				return nil, fmt.Errorf("record: two sources deliver %v", t.Kind)
			}
			seen[t.Kind] = true
			out = append(out, t)
		}
	}
	if !seen[mkv.Video] {
		return nil, errors.New("record: no video source")
	}
	return out, nil
}

type result struct {
	p   mkv.Packet
	err error
}

// Record runs sources into the muxer and sink until ctx is cancelled (the
// practitioner pressed stop, or the daemon is shutting down), the maximum
// duration is reached, every source ends, or a source or the sink fails.
//
// Packets are interleaved by timestamp: a packet is written only once every
// live source has delivered one at least as late, or a lagging live source
// has kept the others waiting for MaxSkew. Timestamps count from the moment
// Record is called. Whatever ends the recording, the muxer's last flush
// point is handed to the sink before Record returns, so every packet
// written is sealed. Record closes the sources.
func Record(ctx context.Context, srcs []Source, sink mkv.Sink, opts RecordOptions) (Stats, error) {
	t0 := Now()
	st := Stats{FirstVideo: -1, FirstAudio: -1}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = time.Second
	}
	tracks, err := Tracks(srcs)
	if err != nil {
		closeAll(srcs)
		return st, err
	}
	mux, err := mkv.NewLiveWriter(sink, tracks, mkv.LiveOptions{ClusterDuration: opts.ClusterDuration, WritingApp: opts.WritingApp})
	if err != nil {
		closeAll(srcs)
		return st, err
	}

	// One reader goroutine per source, each owned by this function: they
	// stop when readCtx is cancelled and the sources are closed, and Record
	// waits for them before returning.
	readCtx, cancel := context.WithCancel(context.Background())
	chans := make([]chan result, len(srcs))
	done := make(chan struct{}, len(srcs))
	for i, s := range srcs {
		ch := make(chan result, 4)
		chans[i] = ch
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				p, err := s.Next(readCtx)
				select {
				case ch <- result{p, err}:
				case <-readCtx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	defer func() {
		cancel()
		closeAll(srcs)
		for range srcs {
			<-done
		}
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Select cases are built once; each turn of the packet loop only picks
	// the ones it waits on.
	recv := make([]reflect.SelectCase, len(srcs))
	for i := range chans {
		recv[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(chans[i])}
	}
	doneCase := reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	timerCase := reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}
	cases := make([]reflect.SelectCase, 0, len(srcs)+2)
	idx := make([]int, 0, len(srcs))

	heads := make([]*mkv.Packet, len(srcs))
	ended := make([]bool, len(srcs))
	st.Ended = "stopped"
	var recErr error

	write := func(p mkv.Packet) (stop bool, err error) {
		p.PTS -= t0
		if p.PTS < 0 {
			return false, nil // captured before the recording started
		}
		if opts.MaxDuration > 0 && p.PTS >= opts.MaxDuration {
			st.Ended = "max-duration"
			return true, nil
		}
		if err := mux.WritePacket(p); err != nil {
			return true, err
		}
		switch p.Kind {
		case mkv.Video:
			st.VideoFrames++
			if st.FirstVideo < 0 {
				st.FirstVideo = p.PTS
			}
		case mkv.Audio:
			st.AudioSamples += int64(len(p.Data) / 2)
			if st.FirstAudio < 0 {
				st.FirstAudio = p.PTS
			}
		}
		if p.PTS > st.Duration {
			st.Duration = p.PTS
		}
		return false, nil
	}

loop:
	for {
		// Which live sources have no head yet?
		cases, idx = cases[:0], idx[:0]
		anyHead := false
		for i := range srcs {
			if ended[i] {
				continue
			}
			if heads[i] != nil {
				anyHead = true
				continue
			}
			cases = append(cases, recv[i])
			idx = append(idx, i)
		}
		if len(cases) == 0 && !anyHead {
			st.Ended = "end-of-source"
			break
		}
		if len(cases) > 0 {
			cases = append(cases, doneCase)
			if anyHead {
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				timer.Reset(opts.MaxSkew)
				cases = append(cases, timerCase)
			}
			chosen, v, _ := reflect.Select(cases)
			switch {
			case chosen < len(idx):
				r := v.Interface().(result)
				i := idx[chosen]
				if r.err != nil {
					ended[i] = true
					if !errors.Is(r.err, io.EOF) {
						recErr = &SourceError{Kinds: kinds(srcs[i]), Err: r.err}
						st.Ended = "error"
						break loop
					}
					continue
				}
				heads[i] = &r.p
				continue
			case chosen == len(idx):
				break loop // stopped
			default:
				// A live source lagged past MaxSkew: write what we have.
			}
		} else if ctx.Err() != nil {
			break
		}
		// Write the earliest head.
		best := -1
		for i, h := range heads {
			if h != nil && (best < 0 || h.PTS < heads[best].PTS) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		p := *heads[best]
		heads[best] = nil
		stop, err := write(p)
		if err != nil {
			recErr = err
			st.Ended = "error"
			break
		}
		if stop {
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	for _, s := range srcs {
		if o, ok := s.(interface{ Overruns() int }); ok {
			st.AudioOverruns += o.Overruns()
		}
		if o, ok := s.(interface{ DriverDropped() int }); ok {
			st.VideoDropped += o.DriverDropped()
		}
	}
	st.Bytes = mux.Bytes()
	if err := mux.Close(); err != nil && recErr == nil {
		recErr = err
		st.Ended = "error"
	}
	st.Bytes = mux.Bytes()
	return st, recErr
}

// SourceError is a recording ended by a source that failed (a camera
// unplugged, a microphone gone), as opposed to the sink or the muxer.
type SourceError struct {
	Kinds []mkv.Kind // the failed source's tracks
	Err   error
}

func (e *SourceError) Error() string { return "record: " + e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// Has reports whether the failed source delivered a track of kind k.
func (e *SourceError) Has(k mkv.Kind) bool { return slices.Contains(e.Kinds, k) }

func kinds(s Source) []mkv.Kind {
	var out []mkv.Kind
	for _, t := range s.Tracks() {
		out = append(out, t.Kind)
	}
	return out
}

func closeAll(srcs []Source) {
	for _, s := range srcs {
		s.Close()
	}
}
