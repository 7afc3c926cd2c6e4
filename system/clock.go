package system

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// Clock is the wall clock as far as the daemon can trust it. A Pi has no
// real-time clock and boots in 1970 (or at the last fake-hwclock save), so
// the wall time is trusted only once the paired laptop set it, or the kernel
// says NTP has synchronised it.
type Clock struct {
	mu     sync.Mutex
	set    bool
	offset time.Duration // added to Now after a Set without SetSystem
	// SetSystem makes Set change the kernel clock (root, on the device)
	// rather than only this process's idea of the time.
	SetSystem bool
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
	c.mu.Lock()
	set, off := c.set, c.offset
	c.mu.Unlock()
	now := c.Now().Add(off)
	if now.Before(earliest) {
		return now, false
	}
	return now, set || (c.Synced != nil && c.Synced())
}

// setClock sets the kernel's clock (tests replace it).
var setClock = setSystemClock

// Set sets the wall clock from an authenticated peer (the paired laptop)
// and trusts it from then on.
func (c *Clock) Set(t time.Time) error {
	if t.Before(earliest) {
		return fmt.Errorf("set clock: %s is before %s; the laptop's clock is wrong", t.UTC().Format(time.RFC3339), earliest.Format("2006"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.SetSystem {
		if err := setClock(t); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("set clock: %v: the daemon needs CAP_SYS_TIME (AmbientCapabilities=CAP_SYS_TIME in its systemd unit)", err)
			}
			return fmt.Errorf("set clock: %v", err)
		}
		c.offset = 0
	} else {
		c.offset = t.Sub(c.Now())
	}
	c.set = true
	return nil
}
