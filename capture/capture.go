package capture

import (
	"context"
	"errors"
	"time"
)

// Kind says what a track carries.
type Kind int

const (
	Video Kind = iota + 1
	Audio
)

func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return "unknown"
}

// Codec names follow Matroska codec IDs so they can be written unchanged.
const (
	CodecMJPEG  = "V_MJPEG"
	CodecPCMS16 = "A_PCM/INT/LIT" // signed 16-bit little-endian PCM
)

// Track describes one elementary stream of a source.
type Track struct {
	Kind  Kind
	Codec string

	// Video.
	Width, Height int
	FPS           float64 // nominal frame rate; 0 if unknown

	// Audio.
	SampleRate int // Hz
	Channels   int
	BitDepth   int
}

// Packet is one captured unit: a video frame or a run of audio samples.
//
// PTS is the capture time of the first sample in the packet, measured on the
// monotonic clock from the start of the recording (never from the wall clock,
// which a Pi does not have at boot). Data belongs to the receiver once the
// packet is delivered: sources must not reuse it.
type Packet struct {
	Kind Kind
	PTS  time.Duration
	Data []byte
	Key  bool // decodable on its own (always true for MJPEG and PCM)
}

// A Source delivers packets for one or more tracks.
//
// Next blocks until the next packet is captured, ctx is done, or the source
// ends (io.EOF). Packets of one kind come in PTS order; packets of different
// kinds may come in any order relative to each other. Close releases the
// device; it may be called while Next is blocked and makes Next return.
type Source interface {
	Tracks() []Track
	Next(ctx context.Context) (Packet, error)
	Close() error
}

// Pace says how a replayed or generated source is timed.
type Pace int

const (
	// Realtime delivers each packet at its timestamp, like a live device.
	Realtime Pace = iota
	// Fast delivers packets as fast as the consumer takes them; timestamps
	// stay those of the content.
	Fast
)

// ParsePace parses "realtime" or "none".
func ParsePace(s string) (Pace, error) {
	switch s {
	case "realtime", "":
		return Realtime, nil
	case "none":
		return Fast, nil
	}
	return 0, errors.New(`pace must be "realtime" or "none"`)
}

// epoch anchors packet timestamps to the monotonic clock.
var epoch = time.Now()

// Now is the monotonic capture clock: the time since the process started.
// Live sources stamp packets with Now() at dequeue; the pipeline subtracts the
// recording's start.
func Now() time.Duration { return time.Since(epoch) }

// sleepUntil waits until the capture clock reads t or ctx is done.
func sleepUntil(ctx context.Context, t time.Duration) error {
	d := t - Now()
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
