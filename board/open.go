package board

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"attune.dev/attune/board/hw"
)

// hardware is what Open needs from the host: open_linux.go provides
// periph's; tests provide fakes, so that the wiring below is checked on any
// OS.
type hardware interface {
	// pin returns the header GPIO "GPIOn", not yet configured, and a func
	// that releases it.
	pin(name string) (gpio.PinIO, func(), error)
	// i2c opens an I2C bus by number ("1").
	i2c(bus string) (i2c.BusCloser, error)
	// spi opens a SPI port by device path ("/dev/spidev0.0").
	spi(dev string) (spi.PortCloser, error)
}

// Hints appended to errors, saying what to check.
const (
	hintPinBusy = "check that no other program, service or device-tree overlay holds the line (gpioinfo shows its consumer)"
	hintI2C     = "enable I2C (dtparam=i2c_arm=on in /boot/firmware/config.txt, or raspi-config), reboot, and check that the user can open /dev/i2c-%s (group i2c)"
	hintSPI     = "enable SPI (dtparam=spi=on in /boot/firmware/config.txt, or raspi-config), reboot, and check that the user can open %s (group spi)"
)

// assemble opens everything p describes on h. On error, whatever was
// opened is released again.
func assemble(p *Profile, h hardware) (_ *Board, err error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("open board %s: "+format, append([]any{p.Name}, args...)...)
	}
	if p.Simulated() {
		return nil, fail("the profile describes the simulated board; open it with board.NewSimFromProfile, or load a hardware profile such as pi-ref")
	}
	b := &Board{Name: p.Name}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.Close())
		}
	}()

	// pin opens a GPIO and registers its release.
	pin := func(name, what string) (gpio.PinIO, error) {
		pn, release, err := h.pin(name)
		if err != nil {
			return nil, fail("pin %s (%s): %w", name, what, err)
		}
		b.close = append(b.close, func() error {
			err := pn.Halt()
			release()
			if err != nil {
				return fmt.Errorf("close board %s: pin %s (%s): %w", p.Name, name, what, err)
			}
			return nil
		})
		return pn, nil
	}

	for _, name := range ButtonNames {
		spec, ok := p.Buttons[name]
		if !ok {
			return nil, fail("no %s button in the profile; load it with LoadProfile, which checks that", name)
		}
		what := "button " + name
		pn, err := pin(spec.Pin, what)
		if err != nil {
			return nil, err
		}
		pull := gpio.PullDown
		if spec.ActiveLow {
			pull = gpio.PullUp
		}
		if err := pn.In(pull, gpio.BothEdges); err != nil {
			return nil, fail("pin %s (%s): set input with %s and edge detection: %w; %s", spec.Pin, what, pull, err, hintPinBusy)
		}
		b.Buttons = append(b.Buttons, hw.Button{Name: name, Pin: pn, ActiveLow: spec.ActiveLow})
	}

	switch p.LED.Type {
	case "rgb", "discrete":
		l := &pinLED{activeLow: p.LED.ActiveLow}
		for i, c := range [3]struct{ colour, pin string }{{"red", p.LED.Red}, {"green", p.LED.Green}, {"blue", p.LED.Blue}} {
			pn, err := pin(c.pin, "led "+c.colour)
			if err != nil {
				return nil, err
			}
			l.pins[i] = pn
			l.names[i] = fmt.Sprintf("%s (%s)", c.pin, c.colour)
		}
		if err := l.Set(false, false, false); err != nil {
			return nil, fail("%w; %s", err, hintPinBusy)
		}
		b.LED = l
		// Registered after the pins, so it runs before they are released.
		b.close = append(b.close, func() error { return l.Set(false, false, false) })
	default:
		return nil, fail("led type %q cannot be opened on hardware; use rgb or discrete", p.LED.Type)
	}

	buses := map[string]i2c.Bus{}
	openI2C := func(bus, what string) (i2c.Bus, error) {
		if c, ok := buses[bus]; ok {
			return c, nil
		}
		c, err := h.i2c(bus)
		if err != nil {
			return nil, fail("%s: I2C bus %s: %w; "+hintI2C, what, bus, err, bus)
		}
		buses[bus] = c
		b.close = append(b.close, c.Close)
		return c, nil
	}

	d := p.Display
	switch d.Type {
	case "tm1637":
		clk, err := pin(d.CLK, "display clk")
		if err != nil {
			return nil, err
		}
		dio, err := pin(d.DIO, "display dio")
		if err != nil {
			return nil, err
		}
		t, err := NewTM1637(clk, dio, d.Brightness)
		if err != nil {
			return nil, fail("display: %w; %s", err, hintPinBusy)
		}
		if err := t.Show([4]byte{}, false); err != nil {
			return nil, fail("display: %w", err)
		}
		b.Display = t
		b.close = append(b.close, t.Off)
	case "max7219":
		port, err := h.spi(d.SPI)
		if err != nil {
			return nil, fail("display max7219: %s: %w; "+hintSPI, d.SPI, err, d.SPI)
		}
		b.close = append(b.close, port.Close)
		m, err := NewMAX7219(port, d.Brightness)
		if err != nil {
			return nil, fail("display: %w; check the wiring (DIN to MOSI, CLK to SCLK, CS to CE)", err)
		}
		b.Display = m
		b.close = append(b.close, m.Off)
	case "ht16k33":
		bus, err := openI2C(d.I2C, "display ht16k33")
		if err != nil {
			return nil, err
		}
		h, err := NewHT16K33(bus, uint16(d.Addr), d.Brightness)
		if err != nil {
			return nil, fail("display: %w; check its wiring and address (i2cdetect -y %s)", err, d.I2C)
		}
		b.Display = h
		b.close = append(b.close, h.Off)
	case "none":
	default:
		return nil, fail("display type %q cannot be opened on hardware; use tm1637, max7219, ht16k33 or none", d.Type)
	}

	// The battery gauge is optional: a board whose gauge is missing or
	// does not answer works without a battery figure, and says why in
	// Warnings.
	if bt := p.Battery; bt != nil {
		if bt.Type != "ina219" {
			return nil, fail("battery type %q cannot be opened on hardware; use ina219, or remove [battery]", bt.Type)
		}
		if bus, err := openI2C(bt.I2C, "battery ina219"); err != nil {
			b.Warnings = append(b.Warnings, fmt.Errorf("%w; running without a battery figure", err))
		} else if g, err := NewINA219(bus, *bt); err != nil {
			b.Warnings = append(b.Warnings, fmt.Errorf("open board %s: battery: %w; check its wiring and address (i2cdetect -y %s), or remove [battery] from the profile if there is no fuel gauge; running without a battery figure", p.Name, err, bt.I2C))
		} else {
			b.Battery = g
		}
	}
	return b, nil
}
