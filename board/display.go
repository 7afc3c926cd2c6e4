package board

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/devices/v3/ht16k33"
	"periph.io/x/devices/v3/tm1637"

	"attune.dev/attune/board/hw"
)

// segOrder maps the canonical segments a, b, c, d, e, f, g, dp (hw.SegA…hw.SegDP)
// to a chip's bits.
type segOrder [8]byte

// translate turns a canonical pattern into the chip's bit order.
func (o *segOrder) translate(canonical byte) byte {
	var out byte
	for i := range 8 {
		if canonical&(1<<i) != 0 {
			out |= o[i]
		}
	}
	return out
}

var (
	// TM1637 display RAM: bit 0 = a … bit 6 = g, bit 7 = the digit's
	// decimal point; on the common 4-digit clock modules bit 7 of the
	// second digit drives the colon (periph's tm1637.Clock sets it there).
	tm1637Order = segOrder{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80}
	// MAX7219 no-decode mode: bit 7 = DP, then A (bit 6) down to G (bit 0).
	max7219Order = segOrder{0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01, 0x80}
	// HT16K33 7-segment backpacks (Adafruit 0.56"/1.2"): bit 0 = a … bit 6
	// = g, bit 7 = dp.
	ht16k33Order = segOrder{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80}
)

// tm1637Bytes is what goes to TM1637 display RAM for Show(digits, colon).
func tm1637Bytes(digits [4]byte, colon bool) [4]byte {
	var out [4]byte
	for i, d := range digits {
		out[i] = tm1637Order.translate(d)
	}
	if colon {
		out[1] |= 0x80
	}
	return out
}

// TM1637 drives a TM1637 4-digit clock module through periph's tm1637
// driver, which bit-bangs the two-wire protocol on two GPIOs. The chip's
// acknowledge is not read back, so a missing or miswired module shows no
// error: check it by eye at boot ("----").
type TM1637 struct {
	mu         sync.Mutex
	dev        *tm1637.Dev
	brightness tm1637.Brightness
}

var _ hw.Display = (*TM1637)(nil)

// NewTM1637 sets clk and dio high (idle) and returns the display; brightness
// is 0 (1/16 duty) to 7 (14/16).
func NewTM1637(clk gpio.PinOut, dio gpio.PinIO, brightness int) (*TM1637, error) {
	if brightness < 0 || brightness > 7 {
		return nil, fmt.Errorf("open tm1637: brightness %d out of range; use 0 to 7", brightness)
	}
	dev, err := tm1637.New(clk, dio)
	if err != nil {
		return nil, fmt.Errorf("open tm1637 on %s/%s: %w", clk.Name(), dio.Name(), err)
	}
	return &TM1637{dev: dev, brightness: tm1637.Brightness(0x88 | brightness)}, nil
}

// Show writes the four digits (data command 0x40, address 0xC0, the digit
// bytes) and then the display-control command, which also switches the
// display on.
func (d *TM1637) Show(digits [4]byte, colon bool) error {
	b := tm1637Bytes(digits, colon)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.dev.Write(b[:]); err != nil {
		return fmt.Errorf("show on tm1637: %w", err)
	}
	if err := d.dev.SetBrightness(d.brightness); err != nil {
		return fmt.Errorf("show on tm1637: set brightness: %w", err)
	}
	return nil
}

// Off blanks the digits and switches the display off.
func (d *TM1637) Off() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.dev.Halt(); err != nil {
		return fmt.Errorf("blank tm1637: %w", err)
	}
	if err := d.dev.SetBrightness(tm1637.Off); err != nil {
		return fmt.Errorf("blank tm1637: %w", err)
	}
	return nil
}

// MAX7219 registers.
const (
	max7219Noop        = 0x00
	max7219Digit0      = 0x01 // digit registers 0x01–0x08
	max7219DecodeMode  = 0x09
	max7219Intensity   = 0x0A
	max7219ScanLimit   = 0x0B
	max7219Shutdown    = 0x0C
	max7219DisplayTest = 0x0F
)

// MAX7219 drives a MAX7219 7-segment module over SPI in no-decode mode with
// four digits scanned. The leftmost digit of Show is DIG3 and the rightmost
// DIG0, which on the common 8-digit modules are the four rightmost
// positions; the colon is the decimal point of the second digit.
//
// It writes the chip's registers itself rather than through periph's
// max7219 package, whose single-unit mode only takes BCD characters and
// whose init swallows errors into the global log.
type MAX7219 struct {
	mu   sync.Mutex
	conn spi.Conn
}

var _ hw.Display = (*MAX7219)(nil)

// NewMAX7219 connects at 10 MHz, mode 0, and initialises the chip:
// display test off, no decode, four digits, intensity 0–15, blank, on.
func NewMAX7219(port spi.Port, brightness int) (*MAX7219, error) {
	if brightness < 0 || brightness > 15 {
		return nil, fmt.Errorf("open max7219: brightness %d out of range; use 0 to 15", brightness)
	}
	c, err := port.Connect(10*physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("open max7219 on %s: %w", port, err)
	}
	d := &MAX7219{conn: c}
	for _, cmd := range [][2]byte{
		{max7219DisplayTest, 0},
		{max7219Shutdown, 0},
		{max7219DecodeMode, 0},
		{max7219ScanLimit, 3},
		{max7219Intensity, byte(brightness)},
	} {
		if err := d.write(cmd[0], cmd[1]); err != nil {
			return nil, fmt.Errorf("open max7219 on %s: %w", port, err)
		}
	}
	if err := d.Show([4]byte{}, false); err != nil {
		return nil, err
	}
	if err := d.write(max7219Shutdown, 1); err != nil {
		return nil, fmt.Errorf("open max7219 on %s: %w", port, err)
	}
	return d, nil
}

func (d *MAX7219) write(reg, val byte) error { return d.conn.Tx([]byte{reg, val}, nil) }

// Show writes the four digit registers, leftmost digit first (DIG3).
func (d *MAX7219) Show(digits [4]byte, colon bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, c := range digits {
		b := max7219Order.translate(c)
		if colon && i == 1 {
			b |= max7219Order.translate(hw.SegDP)
		}
		if err := d.write(max7219Digit0+byte(3-i), b); err != nil {
			return fmt.Errorf("show on max7219: %w", err)
		}
	}
	return nil
}

// Off blanks the digits and puts the chip in shutdown.
func (d *MAX7219) Off() error {
	if err := d.Show([4]byte{}, false); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write(max7219Shutdown, 0); err != nil {
		return fmt.Errorf("blank max7219: %w", err)
	}
	return nil
}

// HT16K33 drives an HT16K33 7-segment backpack (the Adafruit 4-digit
// layout: digits in display RAM columns 0, 1, 3 and 4, the colon bit 1 of
// column 2) through periph's ht16k33 driver.
type HT16K33 struct {
	mu  sync.Mutex
	dev *ht16k33.Dev
}

var _ hw.Display = (*HT16K33)(nil)

// NewHT16K33 starts the oscillator, switches the display on and sets the
// brightness, 0–15.
func NewHT16K33(bus i2c.Bus, addr uint16, brightness int) (*HT16K33, error) {
	if brightness < 0 || brightness > 15 {
		return nil, fmt.Errorf("open ht16k33: brightness %d out of range; use 0 to 15", brightness)
	}
	dev, err := ht16k33.NewI2C(bus, addr)
	if err != nil {
		return nil, fmt.Errorf("open ht16k33 at 0x%02X on %s: %w", addr, bus, err)
	}
	if err := dev.SetBrightness(brightness); err != nil {
		return nil, fmt.Errorf("open ht16k33 at 0x%02X on %s: %w", addr, bus, err)
	}
	d := &HT16K33{dev: dev}
	if err := d.Show([4]byte{}, false); err != nil {
		return nil, err
	}
	return d, nil
}

// ht16k33Columns are the display RAM columns of the four digits.
var ht16k33Columns = [4]int{0, 1, 3, 4}

// Show writes the four digits and the colon.
func (d *HT16K33) Show(digits [4]byte, colon bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, c := range digits {
		if err := d.dev.WriteColumn(ht16k33Columns[i], uint16(ht16k33Order.translate(c))); err != nil {
			return fmt.Errorf("show on ht16k33: %w", err)
		}
	}
	var c uint16
	if colon {
		c = 0x02
	}
	if err := d.dev.WriteColumn(2, c); err != nil {
		return fmt.Errorf("show on ht16k33: %w", err)
	}
	return nil
}

// Off blanks the display.
func (d *HT16K33) Off() error { return d.Show([4]byte{}, false) }
