package board

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"

	"attune.dev/attune/board/hw"
)

// pinLED is an RGB LED or three discrete LEDs, one GPIO per colour.
type pinLED struct {
	mu        sync.Mutex
	pins      [3]gpio.PinOut
	names     [3]string // "GPIO5 (red)"
	activeLow bool
}

var _ hw.LED = (*pinLED)(nil)

// Set lights the colours given; a colour whose pin fails is reported but
// the others are still set.
func (l *pinLED) Set(red, green, blue bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for i, on := range [3]bool{red, green, blue} {
		if err := l.pins[i].Out(gpio.Level(on != l.activeLow)); err != nil {
			errs = append(errs, fmt.Errorf("set led: pin %s: %w", l.names[i], err))
		}
	}
	return errors.Join(errs...)
}
