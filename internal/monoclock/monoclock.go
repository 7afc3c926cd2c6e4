package monoclock

import (
	"time"

	"attune.dev/attune/mkv"
)

// Map maps times on CLOCK_MONOTONIC onto a recording clock.
type Map struct {
	offset time.Duration // recording clock minus CLOCK_MONOTONIC
}

// NewMap reads the recording clock and CLOCK_MONOTONIC (mono) together.
func NewMap(clock, mono func() time.Duration) Map {
	return Map{offset: clock() - mono()}
}

// At returns the monotonic time t on the recording clock, but never later
// than read, the recording clock's time when the data stamped t was read
// (a driver cannot have captured it later than that).
func (m Map) At(t, read time.Duration) time.Duration {
	return min(t+m.offset, read)
}

// Step is the least distance Increasing keeps between stamps: the
// recording's timestamp resolution (mkv.TimecodeScale, 1 ms), so that
// stamps stay strictly increasing in the recording, not only here.
const Step = mkv.TimecodeScale

// Increasing keeps a stream's stamps strictly increasing, at least Step
// apart. The zero value is ready to use.
type Increasing struct {
	last   time.Duration
	sent   bool
	nudged int
}

// Next returns pts, or Step after the previous stamp if pts is closer to
// it or earlier (counted in Nudged).
func (s *Increasing) Next(pts time.Duration) time.Duration {
	if s.sent && pts < s.last+Step {
		pts = s.last + Step
		s.nudged++
	}
	s.last, s.sent = pts, true
	return pts
}

// Nudged is how many stamps Next moved.
func (s *Increasing) Nudged() int { return s.nudged }
