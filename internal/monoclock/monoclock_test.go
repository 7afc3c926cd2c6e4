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
	const ms = time.Millisecond
	// Earlier, equal, or less than the recording's 1 ms resolution later:
	// moved to 1 ms after the last.
	for _, p := range []time.Duration{5 * ms, 3 * ms, 8 * ms, 8 * ms, 9500 * time.Microsecond, 12 * ms} {
		got = append(got, s.Next(p))
	}
	want := []time.Duration{5 * ms, 6 * ms, 8 * ms, 9 * ms, 10 * ms, 12 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("stamps = %v, want %v", got, want)
		}
	}
	if s.Nudged() != 3 {
		t.Errorf("Nudged = %d, want 3", s.Nudged())
	}
}
