package board

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

// fakeHW is the hardware interface over gpiotest pins and fake buses.
type fakeHW struct {
	pins      map[string]*gpiotest.Pin
	released  map[string]int
	missing   string // a pin name that is not found
	buses     map[string]*fakeI2C
	spiPorts  map[string]*spitest.Record
	i2cOpened int
}

func newFakeHW() *fakeHW {
	return &fakeHW{pins: map[string]*gpiotest.Pin{}, released: map[string]int{}, buses: map[string]*fakeI2C{}, spiPorts: map[string]*spitest.Record{}}
}

func (h *fakeHW) pin(name string) (gpio.PinIO, func(), error) {
	if name == h.missing {
		return nil, nil, errors.New("not found; is this a Raspberry Pi with gpiochip access (run as root or in group gpio)?")
	}
	p := &gpiotest.Pin{N: name, EdgesChan: make(chan gpio.Level, 4)}
	h.pins[name] = p
	return p, func() { h.released[name]++ }, nil
}

func (h *fakeHW) i2c(bus string) (i2c.BusCloser, error) {
	h.i2cOpened++
	b := h.buses[bus]
	if b == nil {
		return nil, fmt.Errorf("i2creg: can't open unknown bus: %q", bus)
	}
	return b, nil
}

func (h *fakeHW) spi(dev string) (spi.PortCloser, error) {
	r := &spitest.Record{}
	h.spiPorts[dev] = r
	return r, nil
}

// fakeI2C emulates 16-bit register devices (INA219) and records writes to
// others (HT16K33).
type fakeI2C struct {
	mu     sync.Mutex
	regs   map[uint16]map[byte]uint16 // by address: devices that answer reads
	writes map[uint16][][]byte
	closed int
}

func newFakeI2C(addrs ...uint16) *fakeI2C {
	b := &fakeI2C{regs: map[uint16]map[byte]uint16{}, writes: map[uint16][][]byte{}}
	for _, a := range addrs {
		b.regs[a] = map[byte]uint16{}
	}
	return b
}

func (b *fakeI2C) String() string                  { return "fake-i2c" }
func (b *fakeI2C) SetSpeed(physic.Frequency) error { return nil }
func (b *fakeI2C) Close() error                    { b.mu.Lock(); b.closed++; b.mu.Unlock(); return nil }

func (b *fakeI2C) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes[addr] = append(b.writes[addr], append([]byte(nil), w...))
	if addr >= 0x70 && addr <= 0x77 {
		if _, ok := b.regs[addr]; !ok {
			return errors.New("i2c: no ack")
		}
		return nil // HT16K33: write-only here
	}
	regs, ok := b.regs[addr]
	if !ok {
		return errors.New("i2c: no ack")
	}
	switch {
	case len(w) == 3 && len(r) == 0:
		regs[w[0]] = binary.BigEndian.Uint16(w[1:])
	case len(w) == 1 && len(r) == 2:
		binary.BigEndian.PutUint16(r, regs[w[0]])
	default:
		return fmt.Errorf("fake i2c: unexpected Tx w=%x r=%d", w, len(r))
	}
	return nil
}

func TestAssemblePiRef(t *testing.T) {
	p, err := LoadProfile("pi-ref")
	if err != nil {
		t.Fatal(err)
	}
	hw := newFakeHW()
	bus := newFakeI2C(0x40)
	hw.buses["1"] = bus
	// 3.7 V on the bus (LSB 4 mV, shifted by 3), 0.5 A through the shunt.
	bus.regs[0x40][0x02] = (3700 / 4) << 3
	bus.regs[0x40][0x04] = 5120

	b, err := assemble(p, hw)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "pi-ref" || len(b.Buttons) != 3 || b.LED == nil || b.Display == nil || b.Battery == nil {
		t.Fatalf("board = %+v", b)
	}
	for i, name := range ButtonNames {
		bt := b.Buttons[i]
		pin := hw.pins[p.Buttons[name].Pin]
		if bt.Name != name || bt.Pin != gpio.PinIn(pin) || !bt.ActiveLow {
			t.Errorf("button %d = %+v", i, bt)
		}
		if pin.Pull() != gpio.PullUp || pin.Read() != gpio.High {
			t.Errorf("button %s: pull %v level %v, want pulled up and released", name, pin.Pull(), pin.Read())
		}
	}
	// Buttons were configured with edges: an edge reaches WaitForEdge.
	hw.pins["GPIO17"].EdgesChan <- gpio.Low
	if !b.Buttons[0].Pin.WaitForEdge(time.Second) || !b.Buttons[0].Pressed(b.Buttons[0].Pin.Read()) {
		t.Error("rec: edge not delivered")
	}

	// LED: active high, off after open.
	for _, n := range []string{"GPIO5", "GPIO6", "GPIO13"} {
		if hw.pins[n].Read() != gpio.Low {
			t.Errorf("%s lit after open", n)
		}
	}
	if err := b.LED.Set(true, false, true); err != nil {
		t.Fatal(err)
	}
	if hw.pins["GPIO5"].Read() != gpio.High || hw.pins["GPIO6"].Read() != gpio.Low || hw.pins["GPIO13"].Read() != gpio.High {
		t.Error("LED.Set(red, blue) did not drive red and blue high")
	}

	r, err := b.Battery.Read()
	if err != nil {
		t.Fatal(err)
	}
	if r.Percent != 50 || r.Volts != 3.7 || r.Amps < 0.4999 || r.Amps > 0.5001 {
		t.Errorf("battery = %+v", r)
	}
	// Calibration for 0.1 Ω and 3.2 A: 0.04096 / (3.2/32768 × 0.1) = 4194.
	if got := bus.regs[0x40][0x05]; got != 4194 {
		t.Errorf("calibration register = %d, want 4194", got)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"GPIO5", "GPIO6", "GPIO13"} {
		if hw.pins[n].Read() != gpio.Low {
			t.Errorf("%s lit after Close", n)
		}
	}
	for n := range hw.pins {
		if hw.released[n] != 1 {
			t.Errorf("pin %s released %d times", n, hw.released[n])
		}
	}
	if bus.closed != 1 {
		t.Errorf("I2C bus closed %d times", bus.closed)
	}
}

func TestAssembleActiveLowLEDAndPullDown(t *testing.T) {
	p, _ := LoadProfile("pi-ref")
	p.LED.ActiveLow = true
	rec := p.Buttons["rec"]
	rec.ActiveLow = false
	p.Buttons["rec"] = rec
	p.Battery = nil
	p.Display = DisplaySpec{Type: "none"}
	hw := newFakeHW()
	b, err := assemble(p, hw)
	if err != nil {
		t.Fatal(err)
	}
	if hw.pins["GPIO17"].Pull() != gpio.PullDown || b.Buttons[0].ActiveLow {
		t.Error("active-high button not pulled down")
	}
	if hw.pins["GPIO5"].Read() != gpio.High {
		t.Error("active-low LED lit (low) after open")
	}
	_ = b.LED.Set(true, false, false)
	if hw.pins["GPIO5"].Read() != gpio.Low || hw.pins["GPIO6"].Read() != gpio.High {
		t.Error("active-low LED: red not driven low")
	}
	if b.Display != nil || b.Battery != nil {
		t.Error("display none or no battery gave a device")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if hw.pins["GPIO5"].Read() != gpio.High {
		t.Error("active-low LED lit after Close")
	}
}

func TestAssemblePinNotFound(t *testing.T) {
	p, _ := LoadProfile("pi-ref")
	hw := newFakeHW()
	hw.missing = "GPIO5"
	_, err := assemble(p, hw)
	want := "open board pi-ref: pin GPIO5 (led red): not found; is this a Raspberry Pi with gpiochip access (run as root or in group gpio)?"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// The buttons opened before were released again.
	for _, n := range []string{"GPIO17", "GPIO27", "GPIO22"} {
		if hw.released[n] != 1 {
			t.Errorf("%s released %d times after the failure", n, hw.released[n])
		}
	}
}

// The battery gauge is optional: a silent gauge or a missing bus leaves the
// board without a Battery and one warning, never a failed Open.
func TestAssembleBatteryMissing(t *testing.T) {
	p, _ := LoadProfile("pi-ref")
	for _, tc := range []struct {
		name  string
		buses map[string]*fakeI2C
		want  []string
	}{
		{"silent gauge", map[string]*fakeI2C{"1": newFakeI2C()}, // nothing answers at 0x40
			[]string{"open board pi-ref: battery: open ina219 0x40 on fake-i2c", "remove [battery] from the profile", "running without a battery figure"}},
		{"no bus", map[string]*fakeI2C{},
			[]string{"open board pi-ref: battery ina219: I2C bus 1: ", "enable I2C", "running without a battery figure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hw := newFakeHW()
			hw.buses = tc.buses
			b, err := assemble(p, hw)
			if err != nil {
				t.Fatalf("assemble failed on a missing battery gauge: %v", err)
			}
			defer b.Close()
			if b.Battery != nil || b.LED == nil || b.Display == nil || len(b.Buttons) != 3 {
				t.Errorf("board = %+v, want buttons, LED and display but no battery", b)
			}
			if len(b.Warnings) != 1 {
				t.Fatalf("warnings = %v, want one", b.Warnings)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.Warnings[0].Error(), w) {
					t.Errorf("warning = %v\nwant it to contain %q", b.Warnings[0], w)
				}
			}
		})
	}
}

func TestAssembleSharedI2CAndMAX7219(t *testing.T) {
	p, _ := LoadProfile("pi-ref")
	p.Display = DisplaySpec{Type: "ht16k33", I2C: "1", Addr: 0x70, Brightness: 15}
	hw := newFakeHW()
	bus := newFakeI2C(0x40, 0x70)
	hw.buses["1"] = bus
	b, err := assemble(p, hw)
	if err != nil {
		t.Fatal(err)
	}
	if hw.i2cOpened != 1 {
		t.Errorf("I2C bus 1 opened %d times for two devices", hw.i2cOpened)
	}
	if _, ok := b.Display.(*HT16K33); !ok {
		t.Errorf("display = %T", b.Display)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if bus.closed != 1 {
		t.Errorf("bus closed %d times", bus.closed)
	}

	p.Display = DisplaySpec{Type: "max7219", SPI: "/dev/spidev0.0", Brightness: 3}
	p.Battery = nil
	hw = newFakeHW()
	b, err = assemble(p, hw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Display.(*MAX7219); !ok || len(hw.spiPorts["/dev/spidev0.0"].Ops) == 0 {
		t.Errorf("display = %T, no SPI writes", b.Display)
	}
	_ = b.Close()
}
