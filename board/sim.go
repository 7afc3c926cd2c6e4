package board

import (
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"attune.dev/attune/board/hw"
)

// simEdgeBuffer is how many edges a sim button queues for WaitForEdge.
const simEdgeBuffer = 64

// Sim is the simulated board: buttons pressed from code (or a web panel),
// an LED and a display that record what they are told.
//
// Its buttons are periph gpiotest.Pins set up like pi-ref's (active low,
// pulled up, edges on both press and release), so ui's WaitForEdge and
// Read work on them as on hardware: each WaitForEdge returns one press or
// release, in order, and Read then gives the level of that edge. Their
// WaitForEdge (a thin wrapper over the gpiotest.Pin's EdgesChan) returns a
// queued edge even with timeout 0, waits forever with -1, and returns
// false when the pin is halted, as Board.Close does. Sim buttons are always
// active low; a sim profile's active_low is not consulted.
//
// The board has a Battery only if NewSim was given WithBattery or the
// profile has [battery] type = "sim"; SetBattery then changes its reading.
type Sim struct {
	board *Board
	pins  map[string]*gpiotest.Pin // immutable after NewSim

	mu      sync.Mutex
	led     [3]bool
	digits  [4]byte
	colon   bool
	percent int
	changed chan struct{} // closed and replaced on every change
}

// SimOption configures NewSim.
type SimOption func(*simConfig)

type simConfig struct {
	battery bool
	percent int
	name    string
}

// WithBattery gives the sim board a Battery reading percent (0–100).
func WithBattery(percent int) SimOption {
	return func(c *simConfig) { c.battery, c.percent = true, percent }
}

// NewSim returns a simulated board named "sim", buttons released, LED off,
// display blank.
func NewSim(opts ...SimOption) *Sim {
	c := simConfig{name: "sim"}
	for _, o := range opts {
		o(&c)
	}
	s := &Sim{
		pins:    map[string]*gpiotest.Pin{},
		changed: make(chan struct{}),
		percent: clampPercent(c.percent),
		board:   &Board{Name: c.name},
	}
	var pins []*simPin
	for i, name := range ButtonNames {
		p := &gpiotest.Pin{
			N:         "SIM_" + name,
			Num:       i,
			Fn:        "In/High",
			EdgesChan: make(chan gpio.Level, simEdgeBuffer),
		}
		// Pulled up, released: High, as on pi-ref.
		_ = p.In(gpio.PullUp, gpio.BothEdges)
		s.pins[name] = p
		sp := &simPin{Pin: p, halt: make(chan struct{})}
		pins = append(pins, sp)
		s.board.Buttons = append(s.board.Buttons, hw.Button{Name: name, Pin: sp, ActiveLow: true})
	}
	s.board.LED = simLED{s}
	s.board.Display = simDisplay{s}
	if c.battery {
		s.board.Battery = simBattery{s}
	}
	s.board.close = []func() error{func() error {
		for _, p := range pins {
			p.mu.Lock()
			p.closed = true
			p.mu.Unlock()
			_ = p.Halt()
		}
		s.set(func() {
			s.led = [3]bool{}
			s.digits, s.colon = [4]byte{}, false
		})
		return nil
	}}
	return s
}

// NewSimFromProfile returns the simulated board a sim profile describes
// (the built-in "sim"): it has a Battery if the profile has [battery].
func NewSimFromProfile(p *Profile) (*Sim, error) {
	if !p.Simulated() {
		return nil, fmt.Errorf("open sim board %s: the profile describes hardware; open it with board.Open, or load the sim profile", p.Name)
	}
	opts := []SimOption{func(c *simConfig) { c.name = p.Name }}
	if p.Battery != nil {
		opts = append(opts, WithBattery(100))
	}
	return NewSim(opts...), nil
}

// Board returns the board ui drives; every call returns the same one.
func (s *Sim) Board() *Board { return s.board }

// Pin returns a button's gpiotest.Pin, or nil if there is no such button.
func (s *Sim) Pin(name string) *gpiotest.Pin { return s.pins[name] }

// Press presses (down) or releases a button: it sets the pin's level and
// queues the edge for WaitForEdge. It never blocks: if nobody waits, the
// level is still set, and if simEdgeBuffer edges are already waiting the
// oldest is dropped so that the last one queued is always the newest.
func (s *Sim) Press(name string, down bool) error {
	p := s.pins[name]
	if p == nil {
		return fmt.Errorf("press sim button %q: no such button; use rec, mark or pair", name)
	}
	l := gpio.Level(!down) // active low: pressed reads Low
	p.Lock()
	p.L = l
	p.Unlock()
	for {
		select {
		case p.EdgesChan <- l:
			return nil
		default:
		}
		select {
		case <-p.EdgesChan:
		default:
		}
	}
}

// LED returns the colours lit.
func (s *Sim) LED() (r, g, b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.led[0], s.led[1], s.led[2]
}

// Digits returns the digits shown (canonical encoding) and the colon.
func (s *Sim) Digits() ([4]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.digits, s.colon
}

// Battery returns the simulated charge in percent.
func (s *Sim) Battery() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.percent
}

// SetBattery sets the simulated charge, clamped to 0–100. On a Sim made
// without a battery nothing can read it.
func (s *Sim) SetBattery(percent int) {
	percent = clampPercent(percent)
	s.set(func() { s.percent = percent })
}

// Changed returns a channel that is closed at the next change of the LED,
// the display or the battery (a write of the same state is no change).
// Take the channel before reading the state, then wait on it, and no
// change is missed:
//
//	for {
//		ch := sim.Changed()
//		send(sim.LED()); send(sim.Digits())
//		<-ch
//	}
//
// Any number of goroutines may wait on it.
func (s *Sim) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// set applies f under the lock and signals Changed if the state changed.
func (s *Sim) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := struct {
		led    [3]bool
		digits [4]byte
		colon  bool
		pct    int
	}{s.led, s.digits, s.colon, s.percent}
	f()
	if before.led != s.led || before.digits != s.digits || before.colon != s.colon || before.pct != s.percent {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

func clampPercent(p int) int { return max(0, min(100, p)) }

type simLED struct{ s *Sim }

func (l simLED) Set(r, g, b bool) error {
	l.s.set(func() { l.s.led = [3]bool{r, g, b} })
	return nil
}

type simDisplay struct{ s *Sim }

func (d simDisplay) Show(digits [4]byte, colon bool) error {
	d.s.set(func() { d.s.digits, d.s.colon = digits, colon })
	return nil
}

type simBattery struct{ s *Sim }

// Simulated voltage range: one Li-ion cell, as pi-ref's defaults.
const simEmptyVolts, simFullVolts = 3.3, 4.1

func (b simBattery) Read() (hw.BatteryReading, error) {
	p := b.s.Battery()
	return hw.BatteryReading{
		Volts:   simEmptyVolts + float64(p)/100*(simFullVolts-simEmptyVolts),
		Amps:    0.25,
		Percent: p,
	}, nil
}

// simPin is a sim button's pin: the gpiotest.Pin with a WaitForEdge that
// prefers a queued edge (gpiotest's picks at random between a queued edge
// and an expired timeout, so WaitForEdge(0) could miss it) and that Halt
// interrupts, as on hardware.
type simPin struct {
	*gpiotest.Pin

	mu     sync.Mutex
	halt   chan struct{} // closed and replaced by Halt
	closed bool          // by Board.Close: waits return false at once
}

// WaitForEdge implements gpio.PinIn.
func (p *simPin) WaitForEdge(timeout time.Duration) bool {
	select {
	case l := <-p.EdgesChan:
		_ = p.Out(l)
		return true
	default:
	}
	if timeout == 0 {
		return false
	}
	p.mu.Lock()
	halt, closed := p.halt, p.closed
	p.mu.Unlock()
	if closed {
		return false
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case l := <-p.EdgesChan:
		_ = p.Out(l)
		return true
	case <-expired:
		return false
	case <-halt:
		return false
	}
}

// Halt implements conn.Resource: it interrupts pending WaitForEdge calls.
func (p *simPin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.halt)
	p.halt = make(chan struct{})
	return nil
}

// Real implements gpio.RealPin.
func (p *simPin) Real() gpio.PinIO { return p.Pin }
