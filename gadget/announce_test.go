package gadget

import (
	"slices"
	"testing"
	"time"
)

// TestReannouncer: with carrier and nothing from the laptop, the link is
// announced again after 3 s, then 6, 12 and 24 s later, and no more; not
// once the laptop has sent something; again after a new connection.
func TestReannouncer(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	r := newReannouncer()
	var got []float64
	run := func(from, to float64, carrier bool, rx func(s float64) uint64) {
		for s := from; s <= to; s += 0.5 {
			if r.step(at(s), carrier, rx(s)) {
				got = append(got, s)
			}
		}
	}
	silent := func(float64) uint64 { return 7 }
	run(0, 2, false, silent) // no laptop yet
	run(2.5, 60, true, silent)
	if want := []float64{5.5, 11.5, 23.5, 47.5}; !slices.Equal(got, want) {
		t.Fatalf("announced at %v s, want %v", got, want)
	}
	// Unplugged and plugged in again: a new connection, where the laptop
	// talks after 3 s: never announced.
	got = nil
	run(60.5, 61, false, silent)
	run(61.5, 120, true, func(s float64) uint64 {
		if s > 64 {
			return 9
		}
		return 7
	})
	if len(got) != 0 {
		t.Errorf("announced at %v s to a laptop that talks", got)
	}
	// A laptop that talks only after the first announcement gets no more.
	got = nil
	run(120.5, 121, false, silent)
	run(121.5, 180, true, func(s float64) uint64 {
		if s > 127 {
			return 12
		}
		return 7
	})
	if want := []float64{124.5}; !slices.Equal(got, want) {
		t.Errorf("announced at %v s, want %v", got, want)
	}
}
