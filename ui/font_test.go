package ui

import (
	"strings"
	"testing"
)

// Golden canonical bytes (bit 0 = a … bit 6 = g), written out by hand, for
// every text the states produce and the battery words.
func TestSegmentsGolden(t *testing.T) {
	for _, tc := range []struct {
		text   string
		digits [4]byte
		colon  bool
	}{
		{"----", [4]byte{0x40, 0x40, 0x40, 0x40}, false},
		{"PAIr", [4]byte{0x73, 0x77, 0x30, 0x50}, false},
		{"123-", [4]byte{0x06, 0x5B, 0x4F, 0x40}, false},
		{"-456", [4]byte{0x40, 0x66, 0x6D, 0x7D}, false},
		{"789-", [4]byte{0x07, 0x7F, 0x6F, 0x40}, false},
		{"-000", [4]byte{0x40, 0x3F, 0x3F, 0x3F}, false},
		{"  42", [4]byte{0x00, 0x00, 0x66, 0x5B}, false},
		{"   0", [4]byte{0x00, 0x00, 0x00, 0x3F}, false},
		{"9999", [4]byte{0x6F, 0x6F, 0x6F, 0x6F}, false},
		{" 100", [4]byte{0x00, 0x06, 0x3F, 0x3F}, false},
		{"00:07", [4]byte{0x3F, 0x3F, 0x3F, 0x07}, true},
		{"12:34", [4]byte{0x06, 0x5B, 0x4F, 0x66}, true},
		{"99:59", [4]byte{0x6F, 0x6F, 0x6D, 0x6F}, true},
		{"nArK", [4]byte{0x54, 0x77, 0x50, 0x75}, false},
		{"FULL", [4]byte{0x71, 0x3E, 0x38, 0x38}, false},
		{"Err1", [4]byte{0x79, 0x50, 0x50, 0x06}, false},
		{"Err2", [4]byte{0x79, 0x50, 0x50, 0x5B}, false},
		{"Err3", [4]byte{0x79, 0x50, 0x50, 0x4F}, false},
		{"Err9", [4]byte{0x79, 0x50, 0x50, 0x6F}, false},
		{"rSt ", [4]byte{0x50, 0x6D, 0x78, 0x00}, false},
		{"rSt?", [4]byte{0x50, 0x6D, 0x78, 0x53}, false},
		{"bAtt", [4]byte{0x7C, 0x77, 0x78, 0x78}, false},
		{"LobA", [4]byte{0x38, 0x5C, 0x7C, 0x77}, false},
		{"    ", [4]byte{}, false},
		{"CcdE", [4]byte{0x39, 0x58, 0x5E, 0x79}, false},
		{"HhJo", [4]byte{0x76, 0x74, 0x1E, 0x5C}, false},
		{"Uuy6", [4]byte{0x3E, 0x1C, 0x6E, 0x7D}, false},
	} {
		digits, colon, err := Segments(tc.text)
		if err != nil || digits != tc.digits || colon != tc.colon {
			t.Errorf("Segments(%q) = % x, %v, %v; want % x, %v", tc.text, digits, colon, err, tc.digits, tc.colon)
		}
	}
}

func TestSegmentsErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "4 characters"},
		{"abc", "4 characters"},
		{"12345", "4 characters"},
		{"0:007", "4 characters"}, // colon in the wrong place
		{"12:3", "colon may only"},
		{"nArKs", "4 characters"},
		{"BAtt", `glyph for 'B'`}, // B would be 8
		{"mArK", `glyph for 'm'`},
		{"12.3", `glyph for '.'`},
		{"ÄÄÄÄ", `glyph for 'Ä'`},
		{"12:3:", "colon may only"},
		{":123", "colon may only"},
	} {
		_, _, err := Segments(tc.text)
		if err == nil || !strings.HasPrefix(err.Error(), "ui: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Segments(%q): %v, want an error about %s", tc.text, err, tc.want)
		}
	}
}

// TestGlyphsDistinct: every character looks different from every other,
// except S, which is 5 on any 7-segment display.
func TestGlyphsDistinct(t *testing.T) {
	seen := map[byte]rune{}
	for r, g := range glyphs {
		if g&0x80 != 0 {
			t.Errorf("%q lights the decimal point", r)
		}
		if o, ok := seen[g]; ok && !(r == 'S' && o == '5' || r == '5' && o == 'S') {
			t.Errorf("%q and %q look the same (%#02x)", r, o, g)
		}
		seen[g] = r
	}
}
