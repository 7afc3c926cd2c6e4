package capture

import (
	"context"
	"errors"
	"time"

	"attune.dev/attune/mkv"
)

// A Source delivers packets for one or more tracks.
//
// Next blocks until the next packet is captured, ctx is done, or the source
// ends (io.EOF). Packets of one kind come in PTS order; packets of different
// kinds may come in any order relative to each other. Close releases the
// device; it may be called while Next is blocked and makes Next return.
type Source interface {
	Tracks() []mkv.Track
	Next(ctx context.Context) (mkv.Packet, error)
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
// Live sources stamp packets on it (the camera with the driver's capture
// time mapped onto it, the microphone with Now() when read); the pipeline
// subtracts the recording's start.
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
