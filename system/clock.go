package system

import (
	"sync"
	"time"
)

// Clock is the wall clock as far as the daemon can trust it. A Pi has no
// real-time clock and boots in 1970 (or at the last fake-hwclock save), so
// the wall time is trusted only once the paired laptop set it, or the kernel
// says NTP has synchronised it.
type Clock struct {
	mu  sync.Mutex
	set bool
	// Synced reports kernel clock synchronisation; nil means never.
	Synced func() bool
	Now    func() time.Time
}

// NewClock returns the system clock.
func NewClock() *Clock {
	return &Clock{Synced: kernelClockSynced, Now: time.Now}
}

// earliest is a time before which the wall clock is certainly wrong.
var earliest = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Wall returns the wall time and whether it is trusted.
func (c *Clock) Wall() (time.Time, bool) {
	now := c.Now()
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if now.Before(earliest) {
		return now, false
	}
	return now, set || (c.Synced != nil && c.Synced())
}

// MarkSet records that an authenticated peer set the clock.
func (c *Clock) MarkSet() {
	c.mu.Lock()
	c.set = true
	c.mu.Unlock()
}
