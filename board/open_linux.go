//go:build linux

package board

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
	// host registers it on Linux already; named here because the pins come
	// from it: the GPIO character device, the interface that works on the
	// Pi 5 (RP1) and on current kernels for all Pis.
	"periph.io/x/host/v3/gpioioctl"
)

// Open opens the hardware a profile describes: it initialises periph's
// host drivers, configures the buttons as inputs with pull resistors and
// edge detection on both edges, the LED pins as outputs (off), clears the
// display and calibrates the fuel gauge. Close the board to release them.
//
// GPIOs are taken from the GPIO character device (/dev/gpiochipN): line n
// of the Pi's header chip is GPIOn on every Pi from the Zero 2 W to the 5.
// Buttons' WaitForEdge follows periph's gpio.PinIn contract (-1 waits
// forever, 0 polls) on top of gpioioctl, where 0 would wait forever.
func Open(p *Profile) (*Board, error) {
	if p.Simulated() {
		return assemble(p, nil)
	}
	state, err := host.Init()
	if err != nil {
		return nil, fmt.Errorf("open board %s: initialise periph host drivers: %w", p.Name, err)
	}
	return assemble(p, &periphHW{state: state})
}

type periphHW struct {
	state *driverreg.State
}

// headerChips are the labels of the gpiochip whose line n is header GPIOn:
// Pi Zero 2 W, 1–3 (BCM2835 pinctrl), Pi 4 (BCM2711), Pi 5 (RP1).
var headerChips = map[string]bool{
	"pinctrl-bcm2835": true,
	"pinctrl-bcm2711": true,
	"pinctrl-rp1":     true,
}

func (h *periphHW) pin(name string) (gpio.PinIO, func(), error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "GPIO"))
	if err != nil || !strings.HasPrefix(name, "GPIO") {
		return nil, nil, fmt.Errorf("not a GPIO name; write GPIOn as in the profile schema")
	}
	for _, c := range gpioioctl.Chips {
		if headerChips[c.Label()] && n < len(c.Lines()) {
			l := c.Lines()[n]
			return &ioctlPin{l}, l.Close, nil
		}
	}
	// Not a Pi we know, or no character device: whatever periph registered
	// under that name (sysfs, another board's driver).
	if p := gpioreg.ByName(name); p != nil {
		if l, ok := unwrap(p).(*gpioioctl.GPIOLine); ok {
			return &ioctlPin{l}, l.Close, nil
		}
		return p, func() {}, nil
	}
	return nil, nil, errors.New("not found; is this a Raspberry Pi with gpiochip access (run as root or in group gpio)?" + h.gpioDriverNote())
}

// gpioDriverNote says why the GPIO drivers didn't load, if they didn't.
func (h *periphHW) gpioDriverNote() string {
	var notes []string
	for _, f := range append(append([]driverreg.DriverFailure{}, h.state.Failed...), h.state.Skipped...) {
		if n := f.D.String(); strings.Contains(n, "gpio") {
			notes = append(notes, fmt.Sprintf("%s: %v", n, f.Err))
		}
	}
	if len(gpioioctl.Chips) == 0 {
		notes = append(notes, "no /dev/gpiochip* could be opened")
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

func unwrap(p gpio.PinIO) gpio.PinIO {
	for i := 0; i < 4; i++ {
		r, ok := p.(gpio.RealPin)
		if !ok {
			break
		}
		p = r.Real()
	}
	return p
}

// i2c opens bus n as /dev/i2c-n. periph reports a missing device as "no
// bus found; did you forget to call Init()?", so the device file is looked
// at first and named in the error.
func (h *periphHW) i2c(bus string) (i2c.BusCloser, error) {
	dev := "/dev/i2c-" + bus
	if _, err := strconv.Atoi(bus); err != nil {
		dev = bus // a name periph registered, such as "I2C1"
	} else if _, err := os.Stat(dev); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", dev)
		}
		return nil, fmt.Errorf("%s: %w", dev, err)
	}
	c, err := i2creg.Open(bus)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dev, err)
	}
	return c, nil
}

func (h *periphHW) spi(dev string) (spi.PortCloser, error) { return spireg.Open(dev) }

// ioctlPin adapts gpioioctl's WaitForEdge timeouts (0 waits forever, a
// negative one returns at once) to gpio.PinIn's (-1 waits forever).
type ioctlPin struct {
	*gpioioctl.GPIOLine
}

func (p *ioctlPin) WaitForEdge(timeout time.Duration) bool {
	switch {
	case timeout < 0:
		timeout = 0
	case timeout == 0:
		timeout = time.Millisecond
	}
	return p.GPIOLine.WaitForEdge(timeout)
}

// Real implements gpio.RealPin.
func (p *ioctlPin) Real() gpio.PinIO { return p.GPIOLine }
