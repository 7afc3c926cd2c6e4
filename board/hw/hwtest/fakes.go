package hwtest

import (
	"sync"
	"time"

	"attune.dev/attune/board/hw"
)

// notifier closes its channel on every change, so that any number of
// waiters see it.
type notifier struct {
	ch chan struct{}
}

func (n *notifier) changed() <-chan struct{} {
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) signal() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// waitFor calls check under mu until it reports true or timeout passes.
func waitFor(mu *sync.Mutex, n *notifier, timeout time.Duration, check func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		mu.Lock()
		ok := check()
		ch := n.changed()
		mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Frame is one Show of a Display.
type Frame struct {
	Digits [4]byte
	Colon  bool
}

// Display is a fake hw.Display that records every successful Show. Its
// zero value is a blank display, ready to use.
type Display struct {
	mu      sync.Mutex
	history []Frame
	err     error
	n       notifier
}

var _ hw.Display = (*Display)(nil)

// Show records the frame, or returns the error set by SetErr (a failed
// Show is not recorded: the display did not change).
func (d *Display) Show(digits [4]byte, colon bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.history = append(d.history, Frame{digits, colon})
	d.n.signal()
	return nil
}

// SetErr makes the following Shows fail with err (nil: succeed).
func (d *Display) SetErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// History returns every frame shown, oldest first.
func (d *Display) History() []Frame {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Frame(nil), d.history...)
}

// Writes returns how many Shows succeeded.
func (d *Display) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.history)
}

// Last returns the latest frame; false (and a blank frame) if nothing was
// shown.
func (d *Display) Last() (Frame, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.history) == 0 {
		return Frame{}, false
	}
	return d.history[len(d.history)-1], true
}

// WaitFor waits until the latest frame satisfies ok, up to timeout, and
// returns it; false on timeout.
func (d *Display) WaitFor(timeout time.Duration, ok func(Frame) bool) (Frame, bool) {
	var f Frame
	found := waitFor(&d.mu, &d.n, timeout, func() bool {
		if len(d.history) == 0 {
			return false
		}
		f = d.history[len(d.history)-1]
		return ok(f)
	})
	return f, found
}

// WaitWrites waits until n Shows have succeeded, up to timeout; false on
// timeout.
func (d *Display) WaitWrites(timeout time.Duration, n int) bool {
	return waitFor(&d.mu, &d.n, timeout, func() bool { return len(d.history) >= n })
}

// Colour is one Set of an LED.
type Colour struct {
	R, G, B bool
}

// Common colours, as ui sets them.
var (
	Off   = Colour{}
	Red   = Colour{R: true}
	Green = Colour{G: true}
	Blue  = Colour{B: true}
	Amber = Colour{R: true, G: true}
)

// LED is a fake hw.LED that records every successful Set. Its zero value
// is an LED, off, ready to use.
type LED struct {
	mu      sync.Mutex
	history []Colour
	err     error
	n       notifier
}

var _ hw.LED = (*LED)(nil)

// Set records the colour, or returns the error set by SetErr (a failed Set
// is not recorded: the LED did not change).
func (l *LED) Set(r, g, b bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.history = append(l.history, Colour{r, g, b})
	l.n.signal()
	return nil
}

// SetErr makes the following Sets fail with err (nil: succeed).
func (l *LED) SetErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

// History returns every colour set, oldest first.
func (l *LED) History() []Colour {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Colour(nil), l.history...)
}

// Sets returns how many Sets succeeded.
func (l *LED) Sets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.history)
}

// Last returns the latest colour; false (and Off) if Set never succeeded.
func (l *LED) Last() (Colour, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.history) == 0 {
		return Colour{}, false
	}
	return l.history[len(l.history)-1], true
}

// WaitFor waits until the latest colour is c, up to timeout.
func (l *LED) WaitFor(timeout time.Duration, c Colour) bool {
	return waitFor(&l.mu, &l.n, timeout, func() bool {
		return len(l.history) > 0 && l.history[len(l.history)-1] == c
	})
}

// WaitSets waits until n Sets have succeeded, up to timeout; false on
// timeout.
func (l *LED) WaitSets(timeout time.Duration, n int) bool {
	return waitFor(&l.mu, &l.n, timeout, func() bool { return len(l.history) >= n })
}

// Battery is a fake hw.Battery: Read returns the reading set by Set (or
// the error set by SetErr) and counts the reads.
type Battery struct {
	mu      sync.Mutex
	reading hw.BatteryReading
	err     error
	reads   int
}

var _ hw.Battery = (*Battery)(nil)

// NewBattery returns a battery reading percent, with volts linear between
// 3.3 (0 %) and 4.1 (100 %) like pi-ref's defaults.
func NewBattery(percent int) *Battery {
	b := &Battery{}
	b.SetPercent(percent)
	return b
}

// Read implements hw.Battery.
func (b *Battery) Read() (hw.BatteryReading, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	if b.err != nil {
		return hw.BatteryReading{}, b.err
	}
	return b.reading, nil
}

// Set sets the reading.
func (b *Battery) Set(r hw.BatteryReading) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = r
}

// SetPercent sets the reading to percent, with matching volts.
func (b *Battery) SetPercent(percent int) {
	percent = max(0, min(100, percent))
	b.Set(hw.BatteryReading{Volts: 3.3 + 0.8*float64(percent)/100, Amps: 0.25, Percent: percent})
}

// SetErr makes the following Reads fail with err (nil: succeed).
func (b *Battery) SetErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// Reads returns how many times Read was called.
func (b *Battery) Reads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads
}
