package ui

import (
	"errors"
	"fmt"

	"attune.dev/attune/board/hw"
)

// glyphs is the 7-segment font in the canonical encoding (hw.SegA…).
//
//	 aaa
//	f   b
//	 ggg
//	e   c
//	 ddd
//
// Letters are as a 7-segment display can draw them, so case matters: "b"
// and "d" exist only in lower case, "A" and "C" in both. S is drawn as 5,
// I as the left-hand bar (so it differs from 1), and K, which no 7-segment
// display can draw, as an h with a top bar (segments a c e f g): distinct
// from H, h and n, and legible in "nArK".
var glyphs = func() map[rune]byte {
	const (
		a = hw.SegA
		b = hw.SegB
		c = hw.SegC
		d = hw.SegD
		e = hw.SegE
		f = hw.SegF
		g = hw.SegG
	)
	return map[rune]byte{
		'0': a | b | c | d | e | f,
		'1': b | c,
		'2': a | b | d | e | g,
		'3': a | b | c | d | g,
		'4': b | c | f | g,
		'5': a | c | d | f | g,
		'6': a | c | d | e | f | g,
		'7': a | b | c,
		'8': a | b | c | d | e | f | g,
		'9': a | b | c | d | f | g,
		' ': 0,
		'-': g,
		'?': a | b | e | g,
		'A': a | b | c | e | f | g,
		'b': c | d | e | f | g,
		'C': a | d | e | f,
		'c': d | e | g,
		'd': b | c | d | e | g,
		'E': a | d | e | f | g,
		'F': a | e | f | g,
		'H': b | c | e | f | g,
		'h': c | e | f | g,
		'I': e | f,
		'J': b | c | d | e,
		'K': a | c | e | f | g,
		'L': d | e | f,
		'n': c | e | g,
		'o': c | d | e | g,
		'P': a | b | e | f | g,
		'r': e | g,
		'S': a | c | d | f | g,
		't': d | e | f | g,
		'U': b | c | d | e | f,
		'u': c | d | e,
		'y': b | c | d | f | g,
	}
}()

// Segments renders display text: four characters, optionally with a colon
// between the second and third ("00:07"). It fails on any other length and
// on characters the font lacks (see glyphs). The decimal point is never lit.
func Segments(text string) (digits [4]byte, colon bool, err error) {
	rs := []rune(text)
	if len(rs) == 5 && rs[2] == ':' {
		colon = true
		rs = append(rs[:2:2], rs[3:]...)
	}
	if len(rs) != 4 {
		return [4]byte{}, false, fmt.Errorf("ui: display text must be 4 characters, with an optional colon after the second; got %d", len(rs))
	}
	for i, r := range rs {
		s, ok := glyphs[r]
		if r == ':' {
			return [4]byte{}, false, errors.New("ui: a colon may only come between the second and third of four characters")
		}
		if !ok {
			return [4]byte{}, false, fmt.Errorf("ui: no 7-segment glyph for %q", r)
		}
		digits[i] = s
	}
	return digits, colon, nil
}
