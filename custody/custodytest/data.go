package custodytest

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"attune.dev/attune/custody"
)

// Clock is a fake clock for an audit chain's writer: every call of Now
// advances the monotonic time by Step; the wall time is
// Wall plus the monotonic time, trusted when Trusted is set.
type Clock struct {
	mu      sync.Mutex
	mono    time.Duration
	Step    time.Duration
	Wall    time.Time
	Trusted bool
}

// NewClock is a Clock on 2026-03-01 09:00 UTC, trusted, stepping 250 ms.
func NewClock() *Clock {
	return &Clock{Step: 250 * time.Millisecond, Wall: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Trusted: true}
}

// Now is the clock reading, as system.OpenAudit and NewLog take it.
func (c *Clock) Now() (time.Duration, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mono += c.Step
	return c.mono, c.Wall.Add(c.mono), c.Trusted
}

// Record is the n-th record of a varied test chain: recordings started,
// stopped, sealed, transferred and acknowledged, and clock settings.
func Record(n int) custody.Record {
	id := fmt.Sprintf("%016x", 0xabc000+n/10)
	switch n % 6 {
	case 0:
		return custody.Record{Event: custody.EventRecordingStarted, Recording: id, CaseRef: "00112233aabbccdd"}
	case 1:
		return custody.Record{Event: custody.EventRecordingStopped, Recording: id, Detail: "max-duration"}
	case 2:
		return custody.Record{Event: custody.EventRecordingSealed, Recording: id, Count: 12, Bytes: int64(1000 + n), SHA256: strings.Repeat("ab", 32)}
	case 3:
		return custody.Record{Event: custody.EventSegmentTransferred, Recording: id, Segments: []int{0, 1, 2, n}, Bytes: 4096}
	case 4:
		return custody.Record{Event: custody.EventAcknowledged, Recording: id, Segments: []int{0, 1, 2}, Detail: "manifest"}
	default:
		return custody.Record{Event: custody.EventClockSet}
	}
}
