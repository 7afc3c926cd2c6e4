// Package uitest has fake front-panel hardware for tests: an LED and a
// display that remember what they were given and say when that changes.
package uitest

import (
	"sync"

	"attune.dev/attune/board/hw"
	"attune.dev/attune/ui"
)

// LED is a hw.LED that remembers every Set.
type LED struct {
	mu      sync.Mutex
	history [][3]bool
	err     error
	updated chan struct{}
}

var _ hw.LED = (*LED)(nil)

// NewLED returns an LED, off.
func NewLED() *LED { return &LED{updated: make(chan struct{}, 1)} }

// Set records the state, or returns the error given to Fail.
func (l *LED) Set(r, g, b bool) error {
	l.mu.Lock()
	err := l.err
	if err == nil {
		l.history = append(l.history, [3]bool{r, g, b})
	}
	l.mu.Unlock()
	notify(l.updated)
	return err
}

// Fail makes Set return err (nil: succeed again).
func (l *LED) Fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

// State is the state last set (off if never).
func (l *LED) State() (r, g, b bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.history) == 0 {
		return false, false, false
	}
	s := l.history[len(l.history)-1]
	return s[0], s[1], s[2]
}

// History returns every state set, oldest first.
func (l *LED) History() [][3]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][3]bool(nil), l.history...)
}

// Sets is how many times Set succeeded.
func (l *LED) Sets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.history)
}

// Updated receives after Set is called (coalesced: one receive may stand
// for several calls).
func (l *LED) Updated() <-chan struct{} { return l.updated }

// Frame is one write to a Display.
type Frame struct {
	Digits [4]byte
	Colon  bool
}

// Display is a hw.Display that remembers every Show.
type Display struct {
	mu      sync.Mutex
	frames  []Frame
	err     error
	updated chan struct{}
}

var _ hw.Display = (*Display)(nil)

// NewDisplay returns a blank display.
func NewDisplay() *Display { return &Display{updated: make(chan struct{}, 1)} }

// Show records the frame, or returns the error given to Fail.
func (d *Display) Show(digits [4]byte, colon bool) error {
	d.mu.Lock()
	err := d.err
	if err == nil {
		d.frames = append(d.frames, Frame{digits, colon})
	}
	d.mu.Unlock()
	notify(d.updated)
	return err
}

// Fail makes Show return err (nil: succeed again).
func (d *Display) Fail(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// Last is the frame last shown (blank if never).
func (d *Display) Last() Frame {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.frames) == 0 {
		return Frame{}
	}
	return d.frames[len(d.frames)-1]
}

// Frames returns every frame shown, oldest first.
func (d *Display) Frames() []Frame {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Frame(nil), d.frames...)
}

// Writes is how many times Show succeeded.
func (d *Display) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.frames)
}

// Showing reports whether the last frame is text as ui.Segments renders it
// (a blank display shows "    ").
func (d *Display) Showing(text string) bool {
	digits, colon, err := ui.Segments(text)
	return err == nil && d.Last() == Frame{digits, colon}
}

// Updated receives after Show is called (coalesced).
func (d *Display) Updated() <-chan struct{} { return d.updated }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
