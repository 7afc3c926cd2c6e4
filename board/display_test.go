package board

import (
	"bytes"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi/spitest"

	"attune.dev/attune/board/hw"
)

const (
	glyphP = hw.SegA | hw.SegB | hw.SegE | hw.SegF | hw.SegG           // 0x73
	glyph0 = hw.SegA | hw.SegB | hw.SegC | hw.SegD | hw.SegE | hw.SegF // 0x3F
	glyph7 = hw.SegA | hw.SegB | hw.SegC                               // 0x07
	glyphR = hw.SegE | hw.SegG                                         // 0x50
)

func TestSegOrders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order *segOrder
		in    byte
		want  byte
	}{
		// Each segment alone, by the chips' datasheets.
		{"tm1637 a", &tm1637Order, hw.SegA, 0x01},
		{"tm1637 g", &tm1637Order, hw.SegG, 0x40},
		{"tm1637 dp", &tm1637Order, hw.SegDP, 0x80},
		{"max7219 a", &max7219Order, hw.SegA, 0x40},
		{"max7219 b", &max7219Order, hw.SegB, 0x20},
		{"max7219 f", &max7219Order, hw.SegF, 0x02},
		{"max7219 g", &max7219Order, hw.SegG, 0x01},
		{"max7219 dp", &max7219Order, hw.SegDP, 0x80},
		{"ht16k33 a", &ht16k33Order, hw.SegA, 0x01},
		{"ht16k33 dp", &ht16k33Order, hw.SegDP, 0x80},
		// Whole glyphs, worked out by hand: MAX7219 is DP A B C D E F G
		// from bit 7 down.
		{"max7219 P", &max7219Order, glyphP, 0x67}, // A B E F G = 0x40|0x20|0x04|0x02|0x01
		{"max7219 0", &max7219Order, glyph0, 0x7E}, // A–F
		{"max7219 7", &max7219Order, glyph7, 0x70}, // A B C
		{"max7219 r", &max7219Order, glyphR, 0x05}, // E G
		{"max7219 all", &max7219Order, 0xFF, 0xFF},
	} {
		if got := tc.order.translate(tc.in); got != tc.want {
			t.Errorf("%s: translate(0x%02X) = 0x%02X, want 0x%02X", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestMAX7219(t *testing.T) {
	port := &spitest.Record{}
	d, err := NewMAX7219(port, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		{0x0F, 0x00},                               // display test off
		{0x0C, 0x00},                               // shutdown while configuring
		{0x09, 0x00},                               // no decode
		{0x0B, 0x03},                               // scan digits 0–3
		{0x0A, 0x05},                               // intensity
		{0x04, 0}, {0x03, 0}, {0x02, 0}, {0x01, 0}, // blank
		{0x0C, 0x01}, // normal operation
	}
	checkOps(t, "init", port, want)

	port.Ops = nil
	if err := d.Show([4]byte{glyph0, glyph0, glyph0, glyph7}, true); err != nil {
		t.Fatal(err)
	}
	// Leftmost digit in DIG3 (register 4); the colon is the DP of the
	// second digit.
	checkOps(t, "00:07", port, [][]byte{{0x04, 0x7E}, {0x03, 0xFE}, {0x02, 0x7E}, {0x01, 0x70}})

	port.Ops = nil
	if err := d.Off(); err != nil {
		t.Fatal(err)
	}
	checkOps(t, "off", port, [][]byte{{0x04, 0}, {0x03, 0}, {0x02, 0}, {0x01, 0}, {0x0C, 0x00}})

	if _, err := NewMAX7219(&spitest.Record{}, 16); err == nil {
		t.Error("brightness 16 accepted")
	}
}

func checkOps(t *testing.T, what string, port *spitest.Record, want [][]byte) {
	t.Helper()
	if len(port.Ops) != len(want) {
		t.Fatalf("%s: %d writes, want %d: %v", what, len(port.Ops), len(want), port.Ops)
	}
	for i, op := range port.Ops {
		if !bytes.Equal(op.W, want[i]) {
			t.Errorf("%s: write %d = % X, want % X", what, i, op.W, want[i])
		}
	}
}

func TestHT16K33(t *testing.T) {
	bus := &i2ctest.Record{}
	d, err := NewHT16K33(bus, 0x70, 9)
	if err != nil {
		t.Fatal(err)
	}
	init := [][]byte{
		{0x21},       // oscillator on
		{0x81},       // display on
		{0x81},       // blink off
		{0xEF},       // periph's default brightness 15
		{0xE9},       // ours
		{0x00, 0, 0}, // blank digits and colon
		{0x02, 0, 0},
		{0x06, 0, 0},
		{0x08, 0, 0},
		{0x04, 0, 0},
	}
	checkI2C(t, "init", bus, init)

	bus.Ops = nil
	if err := d.Show([4]byte{glyphP, glyph0, glyph7, glyphR | hw.SegDP}, true); err != nil {
		t.Fatal(err)
	}
	// RAM addresses 0, 2, 6, 8 hold the digits (a = bit 0), 4 the colon (bit 1).
	checkI2C(t, "show", bus, [][]byte{{0x00, 0x73, 0}, {0x02, 0x3F, 0}, {0x06, 0x07, 0}, {0x08, 0xD0, 0}, {0x04, 0x02, 0}})
}

func checkI2C(t *testing.T, what string, bus *i2ctest.Record, want [][]byte) {
	t.Helper()
	if len(bus.Ops) != len(want) {
		t.Fatalf("%s: %d writes, want %d: %v", what, len(bus.Ops), len(want), bus.Ops)
	}
	for i, op := range bus.Ops {
		if op.Addr != 0x70 || !bytes.Equal(op.W, want[i]) {
			t.Errorf("%s: write %d = 0x%02X % X, want 0x70 % X", what, i, op.Addr, op.W, want[i])
		}
	}
}

func TestBatteryPercent(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want int
	}{
		{3.3, 0}, {3.0, 0}, {3.7, 50}, {4.1, 100}, {4.2, 100}, {3.308, 1}, {3.5, 25},
	} {
		if got := BatteryPercent(tc.v, 3.3, 4.1); got != tc.want {
			t.Errorf("BatteryPercent(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
	if BatteryPercent(3.7, 4, 4) != 0 {
		t.Error("empty range")
	}
}
