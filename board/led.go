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
// the others are still set. The lines going off are switched first and the
// lines coming on after, so that a change never shows a mix of the old and
// the new colour (green to red passing through amber); in between, only
// part of the old colour or part of the new one is lit.
func (l *pinLED) Set(red, green, blue bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	want := [3]bool{red, green, blue}
	for _, on := range [2]bool{false, true} {
		for i := range want {
			if want[i] != on {
				continue
			}
			if err := l.pins[i].Out(gpio.Level(on != l.activeLow)); err != nil {
				errs = append(errs, fmt.Errorf("set led: pin %s: %w", l.names[i], err))
			}
		}
	}
	return errors.Join(errs...)
}
