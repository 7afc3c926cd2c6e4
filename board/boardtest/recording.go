package boardtest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

// Op is what a pin was told.
type Op int

const (
	// OpOut is Out(level).
	OpOut Op = iota
	// OpIn is In(pull, edge): the pin stops driving; Level is what it then
	// reads.
	OpIn
)

func (o Op) String() string {
	if o == OpIn {
		return "in"
	}
	return "out"
}

// Event is one thing a RecordingPin was told.
type Event struct {
	Pin   string
	Op    Op
	Level gpio.Level
}

func (e Event) String() string { return fmt.Sprintf("%s %s %s", e.Pin, e.Op, e.Level) }

// Trace is the ordered record shared by the RecordingPins made from it, so
// that the interleaving of several lines is kept.
type Trace struct {
	mu     sync.Mutex
	events []Event
}

// Pin returns a new pin named name that records into t.
func (t *Trace) Pin(name string) *RecordingPin {
	return &RecordingPin{name: name, trace: t, level: gpio.High}
}

// Events returns a copy of what was recorded.
func (t *Trace) Events() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.events...)
}

// Reset forgets what was recorded.
func (t *Trace) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = nil
}

func (t *Trace) add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
}

// RecordingPin is a fake gpio.PinIO that records every Out and In into its
// Trace. Read returns the last level written (High after In with a pull-up
// or no pull, as a bus line with an external pull-up). It has no edges:
// WaitForEdge waits out its timeout and returns false. PWM fails.
type RecordingPin struct {
	name  string
	trace *Trace

	mu    sync.Mutex
	level gpio.Level
	pull  gpio.Pull
}

var _ gpio.PinIO = (*RecordingPin)(nil)

// NewRecordingPin returns a pin recording into a trace of its own.
func NewRecordingPin(name string) *RecordingPin { return (&Trace{}).Pin(name) }

// Trace returns the trace the pin records into.
func (p *RecordingPin) Trace() *Trace { return p.trace }

// String implements conn.Resource.
func (p *RecordingPin) String() string { return p.name }

// Halt implements conn.Resource.
func (p *RecordingPin) Halt() error { return nil }

// Name implements pin.Pin.
func (p *RecordingPin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *RecordingPin) Number() int { return -1 }

// Function implements pin.Pin.
func (p *RecordingPin) Function() string { return "" }

// In implements gpio.PinIn.
func (p *RecordingPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	p.pull = pull
	p.level = pull != gpio.PullDown
	l := p.level
	p.mu.Unlock()
	p.trace.add(Event{Pin: p.name, Op: OpIn, Level: l})
	return nil
}

// Read implements gpio.PinIn.
func (p *RecordingPin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

// WaitForEdge implements gpio.PinIn: there are never edges.
func (p *RecordingPin) WaitForEdge(timeout time.Duration) bool {
	if timeout > 0 {
		time.Sleep(timeout)
	}
	return false
}

// Pull implements gpio.PinIn.
func (p *RecordingPin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn.
func (p *RecordingPin) DefaultPull() gpio.Pull { return gpio.Float }

// Out implements gpio.PinOut.
func (p *RecordingPin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.level = l
	p.mu.Unlock()
	p.trace.add(Event{Pin: p.name, Op: OpOut, Level: l})
	return nil
}

// PWM implements gpio.PinOut; it is not supported.
func (p *RecordingPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("recording pin " + p.name + ": PWM not supported")
}

// DecodeTM1637 decodes the TM1637 two-wire protocol from events of the
// lines named clk and dio: a frame starts when DIO falls while CLK is high
// and stops when DIO rises while CLK is high; in between, each byte is 8
// bits, least significant first, then a 9th clock for the chip's
// acknowledge, during which DIO must be low (the driver or the chip pulls
// it). A bit is DIO's level during a CLK high pulse that had no start or
// stop in it. It returns the bytes of each frame. Both lines idle high
// before the first event.
func DecodeTM1637(events []Event, clk, dio string) ([][]byte, error) {
	var (
		frames     [][]byte
		cur        []byte
		inFrame    bool
		pending    bool // CLK is high and DIO has not moved since it rose
		bit        int
		b          byte
		clkL, dioL = gpio.High, gpio.High
	)
	for i, e := range events {
		l := e.Level
		if e.Op == OpIn && e.Pin == dio {
			// Released: during a byte's 9th clock the chip acknowledges.
			l = gpio.Low
		}
		switch e.Pin {
		case dio:
			if l == dioL {
				continue
			}
			dioL = l
			if clkL == gpio.Low {
				continue // data changes while the clock is low
			}
			pending = false
			if l == gpio.Low { // start
				if inFrame {
					return frames, fmt.Errorf("event %d: start condition inside a frame after %d bytes", i, len(cur))
				}
				inFrame, cur, bit, b = true, nil, 0, 0
				continue
			}
			if !inFrame { // stop
				return frames, fmt.Errorf("event %d: stop condition outside a frame", i)
			}
			if bit != 0 {
				return frames, fmt.Errorf("event %d: stop condition after %d bits of byte %d", i, bit, len(cur))
			}
			frames = append(frames, cur)
			inFrame = false
		case clk:
			if l == clkL {
				continue
			}
			clkL = l
			if l == gpio.High {
				pending = true
				continue
			}
			if !pending || !inFrame {
				pending = false
				continue
			}
			pending = false
			if bit < 8 {
				if dioL {
					b |= 1 << bit
				}
				bit++
				continue
			}
			if dioL != gpio.Low {
				return frames, fmt.Errorf("event %d: byte %d (0x%02X) not acknowledged: DIO high at the 9th clock", i, len(cur), b)
			}
			cur = append(cur, b)
			bit, b = 0, 0
		}
	}
	if inFrame {
		return frames, fmt.Errorf("trace ends inside a frame after %d bytes", len(cur))
	}
	return frames, nil
}
