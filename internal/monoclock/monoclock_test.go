package monoclock

import (
	"testing"
	"time"
)

func TestMapAt(t *testing.T) {
	m := NewMap(func() time.Duration { return 10 * time.Second }, func() time.Duration { return 1000 * time.Second })
	if got := m.At(1001*time.Second, 12*time.Second); got != 11*time.Second {
		t.Errorf("At(1001s) = %v, want 11s", got)
	}
	// A capture time after the read is clamped to the read.
	if got := m.At(1005*time.Second, 12*time.Second); got != 12*time.Second {
		t.Errorf("At(1005s, read 12s) = %v, want 12s", got)
	}
}

func TestIncreasing(t *testing.T) {
	var s Increasing
	var got []time.Duration
	for _, p := range []time.Duration{5, 3, 8, 8, 9} {
		got = append(got, s.Next(p*time.Millisecond))
	}
	want := []time.Duration{5 * time.Millisecond, 5*time.Millisecond + time.Microsecond, 8 * time.Millisecond, 8*time.Millisecond + time.Microsecond, 9 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stamps = %v, want %v", got, want)
		}
	}
	if s.Nudged() != 2 {
		t.Errorf("Nudged = %d, want 2", s.Nudged())
	}
}
