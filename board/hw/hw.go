package hw

import "periph.io/x/conn/v3/gpio"

// Segment bits of the canonical 7-segment encoding used between ui and the
// display drivers: bit 0 is segment a (top), then b, c, d, e, f, g (middle)
// clockwise from the top, and bit 7 the decimal point. Drivers translate to
// their chip's own order.
const (
	SegA byte = 1 << iota
	SegB
	SegC
	SegD
	SegE
	SegF
	SegG
	SegDP
)

// Display is a 4-digit 7-segment display.
type Display interface {
	// Show lights four digits, left to right, in the canonical encoding;
	// colon lights the centre colon (on displays without one, the decimal
	// point after the second digit).
	Show(digits [4]byte, colon bool) error
}

// LED is the status light: an RGB LED or three discrete LEDs. Amber is red
// and green together.
type LED interface {
	Set(red, green, blue bool) error
}

// BatteryReading is one measurement of the battery.
type BatteryReading struct {
	Volts   float64
	Amps    float64 // positive while discharging
	Percent int     // 0–100, estimated from the voltage between the profile's empty and full
}

// Battery is an optional fuel gauge (an INA219 on the reference board).
type Battery interface {
	Read() (BatteryReading, error)
}

// Button is one front-panel button.
type Button struct {
	Name      string // "rec", "mark" or "pair"
	Pin       gpio.PinIn
	ActiveLow bool // pressed reads Low (a button to ground with a pull-up)
}

// Pressed reports whether level means the button is down.
func (b Button) Pressed(l gpio.Level) bool { return l == gpio.Low == b.ActiveLow }
