package board

import (
	"fmt"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"attune.dev/attune/board/boardtest"
)

// Changing colour never passes through a colour that is neither the old
// nor the new one (green to red used to show amber for ~44 µs): replaying
// the pin writes from the old colour, every state in between lights only
// part of the old colour or only part of the new one.
func TestPinLEDSwitchesOffBeforeOn(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		for from := range 8 {
			for to := range 8 {
				t.Run(fmt.Sprintf("activeLow=%v/%03b-%03b", activeLow, from, to), func(t *testing.T) {
					tr := &boardtest.Trace{}
					l := &pinLED{activeLow: activeLow}
					index := map[string]int{}
					for i, n := range []string{"red", "green", "blue"} {
						l.pins[i] = tr.Pin(n)
						index[n] = i
					}
					bits := func(c int) [3]bool { return [3]bool{c&4 != 0, c&2 != 0, c&1 != 0} }
					f := bits(from)
					if err := l.Set(f[0], f[1], f[2]); err != nil {
						t.Fatal(err)
					}
					tr.Reset()
					n := bits(to)
					if err := l.Set(n[0], n[1], n[2]); err != nil {
						t.Fatal(err)
					}
					lit := f
					subset := func(a, b [3]bool) bool { return (!a[0] || b[0]) && (!a[1] || b[1]) && (!a[2] || b[2]) }
					for _, e := range tr.Events() {
						lit[index[e.Pin]] = e.Level == gpio.Level(!activeLow)
						if !subset(lit, f) && !subset(lit, n) {
							t.Fatalf("after %v the LED shows %v, neither part of %v nor of %v (writes %v)", e, lit, f, n, tr.Events())
						}
					}
					if lit != n {
						t.Errorf("LED ends at %v, want %v", lit, n)
					}
				})
			}
		}
	}
}
