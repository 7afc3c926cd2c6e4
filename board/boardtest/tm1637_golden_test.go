package boardtest_test

import (
	"bytes"
	"fmt"
	"testing"

	"attune.dev/attune/board"
	"attune.dev/attune/board/boardtest"
	"attune.dev/attune/board/hw"
	"periph.io/x/conn/v3/gpio"
)

// Canonical patterns (package hw's encoding) of the characters ui shows. ui
// owns the real font; these are defined by segment name here so that the
// test does not depend on it.
const (
	a, b, c, d, e, f, g = hw.SegA, hw.SegB, hw.SegC, hw.SegD, hw.SegE, hw.SegF, hw.SegG
)

var font = map[rune]byte{
	' ': 0,
	'-': g,
	'0': a | b | c | d | e | f,
	'2': a | b | d | e | g,
	'3': a | b | c | d | g,
	'4': b | c | f | g,
	'7': a | b | c,
	'A': a | b | c | e | f | g,
	'E': a | d | e | f | g,
	'F': a | e | f | g,
	'I': e | f,
	'K': a | c | e | f | g,
	'L': d | e | f,
	'P': a | b | e | f | g,
	'S': a | c | d | f | g,
	'U': b | c | d | e | f,
	'n': c | e | g,
	'r': e | g,
	't': d | e | f | g,
	'?': a | b | e | g,
}

func glyphs(t *testing.T, s string) [4]byte {
	t.Helper()
	var out [4]byte
	r := []rune(s)
	if len(r) != 4 {
		t.Fatalf("%q is not 4 characters", s)
	}
	for i, ch := range r {
		p, ok := font[ch]
		if !ok {
			t.Fatalf("no glyph for %q", ch)
		}
		out[i] = p
	}
	return out
}

// TestTM1637Golden drives periph's tm1637 driver through board.TM1637 over
// two recording pins, decodes the waveform and compares the bytes on the
// wire with ones worked out by hand from the TM1637 datasheet: display RAM
// bit 0 = segment a … bit 6 = g, bit 7 = the colon on the second digit of
// the 4-digit clock modules.
func TestTM1637Golden(t *testing.T) {
	const brightness = 2
	cases := []struct {
		name  string
		text  string
		colon bool
		// Bytes for grids 1–4, by hand:
		//   '-' = g = 0x40          'P' = abefg = 0x73     'A' = abcefg = 0x77
		//   'I' = ef = 0x30         'r' = eg = 0x50        '4' = bcfg = 0x66
		//   '2' = abdeg = 0x5B      '0' = abcdef = 0x3F    '7' = abc = 0x07
		//   'n' = ceg = 0x54        'K' = acefg = 0x75     'F' = aefg = 0x71
		//   'U' = bcdef = 0x3E      'L' = def = 0x38       'E' = adefg = 0x79
		//   '3' = abcdg = 0x4F      'S' = acdfg = 0x6D     't' = defg = 0x78
		//   '?' = abeg = 0x53       colon: 0x80 on grid 2
		grids [4]byte
	}{
		{"booting", "----", false, [4]byte{0x40, 0x40, 0x40, 0x40}},
		{"pairing", "PAIr", false, [4]byte{0x73, 0x77, 0x30, 0x50}},
		{"minutes", " 42 ", false, [4]byte{0x00, 0x66, 0x5B, 0x00}},
		{"clock", "0007", true, [4]byte{0x3F, 0xBF, 0x3F, 0x07}},
		{"mark", "nArK", false, [4]byte{0x54, 0x77, 0x50, 0x75}},
		{"full", "FULL", false, [4]byte{0x71, 0x3E, 0x38, 0x38}},
		{"error", "Err3", false, [4]byte{0x79, 0x50, 0x50, 0x4F}},
		{"reset", "rSt?", false, [4]byte{0x50, 0x6D, 0x78, 0x53}},
		{"blank", "    ", false, [4]byte{0x00, 0x00, 0x00, 0x00}},
	}
	trace := &boardtest.Trace{}
	disp, err := board.NewTM1637(trace.Pin("CLK"), trace.Pin("DIO"), brightness)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			trace.Reset()
			if err := disp.Show(glyphs(t, tc.text), tc.colon); err != nil {
				t.Fatal(err)
			}
			got, err := boardtest.DecodeTM1637(trace.Events(), "CLK", "DIO")
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want := [][]byte{
				{0x40}, // data command: write, auto-increment address
				// address command: grid 1, then the 6 grids periph's
				// driver always writes (grids 5 and 6 are not wired on
				// 4-digit modules).
				{0xC0, tc.grids[0], tc.grids[1], tc.grids[2], tc.grids[3], 0x00, 0x00},
				{0x88 | brightness}, // display control: on, pulse width 4/16
			}
			if !equalFrames(got, want) {
				t.Errorf("Show(%q, colon=%v) sent\n  %s\nwant\n  %s", tc.text, tc.colon, fmtFrames(got), fmtFrames(want))
			}
		})
	}
}

func TestTM1637DecimalPointAndOff(t *testing.T) {
	trace := &boardtest.Trace{}
	disp, err := board.NewTM1637(trace.Pin("CLK"), trace.Pin("DIO"), 7)
	if err != nil {
		t.Fatal(err)
	}
	trace.Reset()
	// "1.5" right-aligned with the point after the 3rd digit: '1' = bc, '5' = acdfg.
	if err := disp.Show([4]byte{0, 0, b | c | hw.SegDP, a | c | d | f | g}, false); err != nil {
		t.Fatal(err)
	}
	got, err := boardtest.DecodeTM1637(trace.Events(), "CLK", "DIO")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{{0x40}, {0xC0, 0x00, 0x00, 0x86, 0x6D, 0x00, 0x00}, {0x8F}}
	if !equalFrames(got, want) {
		t.Errorf("got %s, want %s", fmtFrames(got), fmtFrames(want))
	}

	trace.Reset()
	if err := disp.Off(); err != nil {
		t.Fatal(err)
	}
	got, err = boardtest.DecodeTM1637(trace.Events(), "CLK", "DIO")
	if err != nil {
		t.Fatal(err)
	}
	want = [][]byte{{0x40}, {0xC0, 0, 0, 0, 0, 0, 0}, {0x80}} // blank, display off
	if !equalFrames(got, want) {
		t.Errorf("Off: got %s, want %s", fmtFrames(got), fmtFrames(want))
	}
}

func TestNewTM1637Brightness(t *testing.T) {
	trace := &boardtest.Trace{}
	if _, err := board.NewTM1637(trace.Pin("CLK"), trace.Pin("DIO"), 8); err == nil {
		t.Error("brightness 8 accepted")
	}
}

func TestDecodeTM1637Errors(t *testing.T) {
	ev := func(pin string, l bool) boardtest.Event {
		return boardtest.Event{Pin: pin, Op: boardtest.OpOut, Level: gpio.Level(l)}
	}
	// Start, one bit, stop.
	events := []boardtest.Event{ev("DIO", false), ev("CLK", false), ev("CLK", true), ev("CLK", false), ev("CLK", true), ev("DIO", true)}
	if _, err := boardtest.DecodeTM1637(events, "CLK", "DIO"); err == nil {
		t.Error("a stop after one bit decoded without error")
	}
	// Unterminated frame.
	if _, err := boardtest.DecodeTM1637(events[:2], "CLK", "DIO"); err == nil {
		t.Error("an unterminated frame decoded without error")
	}
	// Byte 0x01 with DIO high at the ack clock.
	events = []boardtest.Event{ev("DIO", false), ev("CLK", false)}
	for i := range 8 {
		events = append(events, ev("DIO", i == 0), ev("CLK", true), ev("CLK", false))
	}
	events = append(events, ev("DIO", true), ev("CLK", true))
	if _, err := boardtest.DecodeTM1637(events, "CLK", "DIO"); err == nil {
		t.Error("a byte without acknowledge decoded without error")
	}
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func fmtFrames(fr [][]byte) string {
	var buf bytes.Buffer
	for i, f := range fr {
		if i > 0 {
			buf.WriteString(" | ")
		}
		fmt.Fprintf(&buf, "% X", f)
	}
	return buf.String()
}
