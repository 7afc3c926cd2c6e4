package ui

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// stamped is an action and when (after t0) the machine emitted it.
type stamped struct {
	at time.Duration
	a  Action
}

// sim drives a Chords the way RunButtons does: edges at given times, and a
// Tick at every deadline in between.
type sim struct {
	t   *testing.T
	c   Chords
	now time.Duration
	got []stamped
}

func newSim(t *testing.T) *sim { return &sim{t: t} }

func (s *sim) record(at time.Duration, as []Action) {
	for _, a := range as {
		if a < ActionRec || a > ActionOther {
			s.t.Fatalf("at %v: invalid action %d", at, a)
		}
		s.got = append(s.got, stamped{at, a})
	}
}

// until ticks at every deadline up to and including d.
func (s *sim) until(d time.Duration) {
	s.t.Helper()
	for n := 0; ; n++ {
		if n > 1000 {
			s.t.Fatalf("at %v: deadline does not move on (busy loop)", s.now)
		}
		dl, ok := s.c.Deadline()
		if !ok || dl.After(t0.Add(d)) {
			break
		}
		at := dl.Sub(t0)
		if at <= s.now && s.now > 0 {
			s.t.Fatalf("deadline %v is not after the last edge or tick %v", at, s.now)
		}
		s.now = at
		s.record(at, s.c.Tick(t0.Add(at)))
	}
	s.now = max(s.now, d)
}

// edge moves time on to d and reports button's level.
func (s *sim) edge(d time.Duration, button string, pressed bool) {
	s.t.Helper()
	s.until(d)
	s.record(d, s.c.Edge(t0.Add(d), button, pressed))
}

// press and release with clean edges.
func (s *sim) press(d time.Duration, button string)   { s.edge(d, button, true) }
func (s *sim) release(d time.Duration, button string) { s.edge(d, button, false) }

// bounce produces a contact bounce starting at d: edges 2 ms apart for 20
// ms, ending at level pressed.
func (s *sim) bounce(d time.Duration, button string, pressed bool) {
	s.t.Helper()
	level := pressed
	for i := 10; i >= 0; i-- {
		s.edge(d+time.Duration(10-i)*2*ms, button, level == (i%2 == 0))
	}
}

func (s *sim) want(want ...stamped) {
	s.t.Helper()
	if !slices.Equal(s.got, want) {
		s.t.Fatalf("actions\n got  %v\n want %v", s.got, want)
	}
}

func (x stamped) String() string { return x.a.String() + "@" + x.at.String() }

func TestRecPressRelease(t *testing.T) {
	s := newSim(t)
	s.press(100*ms, ButtonRec)
	s.release(400*ms, ButtonRec)
	s.until(430*ms - 1)
	s.want()
	s.until(time.Minute)
	s.want(stamped{430 * ms, ActionRec})
}

func TestRecLongHoldStillRec(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.release(20*time.Second, ButtonRec)
	s.until(time.Minute)
	s.want(stamped{20*time.Second + Debounce, ActionRec})
}

func TestMarkOnPress(t *testing.T) {
	s := newSim(t)
	s.press(time.Second, ButtonMark)
	s.until(time.Second + Debounce - 1)
	s.want()
	s.until(time.Second + Debounce)
	s.want(stamped{time.Second + Debounce, ActionMark})
	s.release(5*time.Second, ButtonMark)
	s.until(time.Minute)
	s.want(stamped{time.Second + Debounce, ActionMark})
}

func TestBounceIsOnePress(t *testing.T) {
	for _, button := range []string{ButtonRec, ButtonMark, ButtonPair} {
		t.Run(button, func(t *testing.T) {
			s := newSim(t)
			s.bounce(time.Second, button, true)    // settles down at 1.020 s
			s.bounce(2*time.Second, button, false) // settles up at 2.020 s
			s.until(time.Minute)
			want := map[string]stamped{
				ButtonRec:  {2020*ms + Debounce, ActionRec},
				ButtonMark: {1020*ms + Debounce, ActionMark},
				ButtonPair: {2020*ms + Debounce, ActionOther},
			}[button]
			s.want(want)
		})
	}
}

func TestBlipsShorterThanDebounceIgnored(t *testing.T) {
	s := newSim(t)
	for i, button := range []string{ButtonRec, ButtonMark, ButtonPair} {
		at := time.Duration(i) * time.Second
		s.press(at, button)
		s.release(at+Debounce-1, button)
	}
	s.until(time.Minute)
	s.want()
}

func TestRepeatedLevelIgnored(t *testing.T) {
	s := newSim(t)
	s.release(0, ButtonRec)
	s.press(100*ms, ButtonRec)
	s.press(120*ms, ButtonRec) // same level again: not a change
	s.release(500*ms, ButtonRec)
	s.release(510*ms, ButtonRec)
	s.until(time.Minute)
	s.want(stamped{530 * ms, ActionRec})
}

func TestUnknownButtonIgnored(t *testing.T) {
	var c Chords
	if got := c.Edge(t0, "volume", true); got != nil {
		t.Fatalf("got %v", got)
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("deadline after an unknown button")
	}
}

func TestPairLongPressAtExactly3s(t *testing.T) {
	s := newSim(t)
	s.bounce(time.Second, ButtonPair, true) // the press dates from its last edge, 1.020 s
	s.until(1020*ms + LongPress - 1)
	s.want()
	s.until(1020*ms + LongPress)
	s.want(stamped{1020*ms + LongPress, ActionPair})
	s.release(10*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{1020*ms + LongPress, ActionPair}) // once, nothing on release
}

func TestPairReleasedAtExactly3sCounts(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.release(LongPress, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{LongPress, ActionPair})
}

func TestPairShortIsOther(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.release(LongPress-1, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{LongPress - 1 + Debounce, ActionOther})
}

func TestPairReleaseJustBeforeDeadlineWaitsForDebounce(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.release(LongPress-10*ms, ButtonPair)
	// The deadline at 3 s is undecided until the release is known.
	if dl, _ := s.c.Deadline(); !dl.Equal(t0.Add(LongPress - 10*ms + Debounce)) {
		t.Fatalf("deadline %v", dl.Sub(t0))
	}
	s.until(time.Minute)
	s.want(stamped{LongPress - 10*ms + Debounce, ActionOther})
}

func TestPairBlipOverDeadlineStillLong(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.release(LongPress-20*ms, ButtonPair) // a 25 ms blip across the deadline
	s.press(LongPress+5*ms, ButtonPair)
	s.want(stamped{LongPress + 5*ms, ActionPair}) // decided as soon as the blip is known to be one
	s.release(5*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{LongPress + 5*ms, ActionPair})
}

func TestResetChordAt10s(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.press(time.Second, ButtonPair) // the chord starts now
	s.until(time.Second + ResetChord - 1)
	s.want()
	s.until(time.Second + ResetChord)
	s.want(stamped{time.Second + ResetChord, ActionReset})
	s.until(30 * time.Second) // once
	s.release(31*time.Second, ButtonRec)
	s.release(32*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{time.Second + ResetChord, ActionReset})
}

func TestResetChordPairFirst(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(500*ms, ButtonRec) // before the long press: no ActionPair
	s.until(time.Minute)
	s.want(stamped{500*ms + ResetChord, ActionReset})
}

func TestChordReleasedAt9900msDoesNothing(t *testing.T) {
	for _, first := range []string{ButtonRec, ButtonPair} {
		t.Run(first+" released", func(t *testing.T) {
			s := newSim(t)
			s.press(0, ButtonRec)
			s.press(0+ms, ButtonPair)
			s.release(ms+9900*ms, first)
			s.until(20 * time.Second)
			other := ButtonPair
			if first == ButtonPair {
				other = ButtonRec
			}
			s.release(25*time.Second, other)
			s.until(time.Minute)
			s.want()
		})
	}
}

func TestChordAbortedStillHeldPairDoesNotLongPress(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(time.Second, ButtonRec)
	s.release(2*time.Second, ButtonRec)
	s.release(5*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want()
}

func TestPairFiredThenChord(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(4*time.Second, ButtonRec)
	s.release(15*time.Second, ButtonRec)
	s.release(16*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{LongPress, ActionPair}, stamped{4*time.Second + ResetChord, ActionReset})
}

func TestSecondChordWhilePairHeld(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(time.Second, ButtonRec)
	s.release(12*time.Second, ButtonRec) // reset at 11 s
	s.press(13*time.Second, ButtonRec)   // a new chord
	s.release(14*time.Second, ButtonRec) // aborted
	s.release(15*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{11 * time.Second, ActionReset})
}

func TestMarkWhileRecHeld(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.press(time.Second, ButtonMark)
	s.release(1500*ms, ButtonMark)
	s.release(2*time.Second, ButtonRec)
	s.until(time.Minute)
	s.want(stamped{time.Second + Debounce, ActionMark}, stamped{2*time.Second + Debounce, ActionRec})
}

func TestRecWhileMarkHeld(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonMark)
	s.press(time.Second, ButtonRec)
	s.release(2*time.Second, ButtonRec)
	s.press(3*time.Second, ButtonPair)
	s.release(3500*ms, ButtonPair)
	s.release(4*time.Second, ButtonMark)
	s.until(time.Minute)
	s.want(stamped{Debounce, ActionMark}, stamped{2*time.Second + Debounce, ActionRec}, stamped{3500*ms + Debounce, ActionOther})
}

func TestMarkDuringChord(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.press(ms, ButtonPair)
	s.press(5*time.Second, ButtonMark)
	s.release(6*time.Second, ButtonMark)
	s.until(time.Minute)
	s.want(stamped{5*time.Second + Debounce, ActionMark}, stamped{ms + ResetChord, ActionReset})
}

func TestHeldAtStartIsInert(t *testing.T) {
	s := newSim(t)
	s.c.Initial(t0, ButtonRec, true)
	s.c.Initial(t0, ButtonMark, true)
	s.c.Initial(t0, ButtonPair, false)
	s.press(time.Second, ButtonPair) // REC is held but inert: no chord
	s.release(20*time.Second, ButtonPair)
	s.release(21*time.Second, ButtonRec)  // nothing
	s.release(21*time.Second, ButtonMark) // nothing
	s.press(22*time.Second, ButtonRec)
	s.release(23*time.Second, ButtonRec)
	s.until(time.Minute)
	s.want(stamped{time.Second + LongPress, ActionPair}, stamped{23*time.Second + Debounce, ActionRec})
}

func TestEarlierTimesClamp(t *testing.T) {
	var c Chords
	c.Edge(t0.Add(time.Second), ButtonRec, true)
	c.Edge(t0, ButtonRec, false) // earlier: taken as 1 s
	if got := c.Tick(t0.Add(time.Second + Debounce)); !slices.Equal(got, nil) {
		t.Fatalf("a zero-length press gave %v", got)
	}
	c.Edge(t0.Add(2*time.Second), ButtonRec, true)
	c.Edge(t0.Add(3*time.Second), ButtonRec, false)
	c.Tick(t0) // earlier: ignored
	if got := c.Tick(t0.Add(3*time.Second + Debounce)); !slices.Equal(got, []Action{ActionRec}) {
		t.Fatalf("got %v", got)
	}
}

func TestLateTickDecidesInOrder(t *testing.T) {
	var c Chords
	c.Edge(t0, ButtonPair, true)
	c.Edge(t0.Add(time.Second), ButtonMark, true)
	// One late Tick decides the mark (1 s) before the long press (3 s).
	if got := c.Tick(t0.Add(time.Minute)); !slices.Equal(got, []Action{ActionMark, ActionPair}) {
		t.Fatalf("got %v", got)
	}
	if _, ok := c.Deadline(); ok {
		t.Fatal("deadline with nothing pending")
	}
	// An edge first decides what was due before it.
	var d Chords
	d.Edge(t0, ButtonPair, true)
	if got := d.Edge(t0.Add(5*time.Second), ButtonPair, false); !slices.Equal(got, []Action{ActionPair}) {
		t.Fatalf("got %v", got)
	}
	if got := d.Tick(t0.Add(time.Minute)); got != nil {
		t.Fatalf("release after a long press gave %v", got)
	}
}

func TestChordReleaseJustBeforeDeadline(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.press(ms, ButtonPair)
	s.release(ms+ResetChord-10*ms, ButtonRec) // undecided at the deadline
	if dl, _ := s.c.Deadline(); !dl.Equal(t0.Add(ms + ResetChord - 10*ms + Debounce)) {
		t.Fatalf("deadline %v", dl.Sub(t0))
	}
	s.release(20*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want()
}

func TestChordBlipAcrossDeadlineStillResets(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonRec)
	s.press(ms, ButtonPair)
	s.release(ms+ResetChord-10*ms, ButtonPair)
	s.press(ms+ResetChord+5*ms, ButtonPair) // a 15 ms blip: still held
	s.want(stamped{ms + ResetChord + 5*ms, ActionReset})
	s.release(20*time.Second, ButtonPair)
	s.release(21*time.Second, ButtonRec)
	s.until(time.Minute)
	s.want(stamped{ms + ResetChord + 5*ms, ActionReset})
}

func TestRecPressJustBeforeLongPressDeadline(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(LongPress-10*ms, ButtonRec) // undecided at 3 s; then a chord from 2.99 s
	s.release(5*time.Second, ButtonRec)
	s.release(6*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want()
}

func TestRecPressAtLongPressDeadline(t *testing.T) {
	s := newSim(t)
	s.press(0, ButtonPair)
	s.press(LongPress, ButtonRec) // the long press is decided first
	s.release(5*time.Second, ButtonRec)
	s.release(6*time.Second, ButtonPair)
	s.until(time.Minute)
	s.want(stamped{LongPress, ActionPair})
}
