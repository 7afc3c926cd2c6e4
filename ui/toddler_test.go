package ui

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// rawEdge is one level reported for a button, at a time after t0.
type rawEdge struct {
	at      time.Duration
	button  string
	pressed bool
}

var allButtons = [...]string{ButtonRec, ButtonMark, ButtonPair}

// toddler returns n edges on random buttons with random gaps (always at
// least 1 ms, so no two edges share an instant): mostly bounces and quick
// jabs, sometimes long holds. Every button is released cleanly at the end.
func toddler(seed uint64, n int) []rawEdge {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	level := map[string]bool{}
	pressedAt := map[string]time.Duration{}
	var (
		edges []rawEdge
		at    time.Duration
	)
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	for range n {
		switch k := r.IntN(100); {
		case k < 45:
			at += between(ms, 6*ms) // bounce
		case k < 65:
			at += between(5*ms, 100*ms)
		case k < 92:
			at += between(100*ms, 4*time.Second)
		case k < 97:
			at += between(4*time.Second, 12*time.Second)
		default:
			at += between(9*time.Second, 25*time.Second) // leaning on the buttons
		}
		if r.IntN(10) == 0 {
			// Sneak up on a deadline: just before, at or after a long
			// press or a chord would be due.
			target := pressedAt[ButtonPair] + LongPress
			if r.IntN(2) == 0 {
				target = max(pressedAt[ButtonRec], pressedAt[ButtonPair]) + ResetChord
			}
			if target += between(-40*ms, 40*ms); target > at {
				at = target
			}
		}
		at = at.Round(ms) + ms // whole milliseconds, to make ties with deadlines possible
		b := allButtons[r.IntN(len(allButtons))]
		p := !level[b]
		if r.IntN(8) == 0 {
			p = level[b] // a repeated level: a missed or coalesced edge
		}
		if p && !level[b] {
			pressedAt[b] = at
		}
		level[b] = p
		edges = append(edges, rawEdge{at, b, p})
	}
	for _, b := range allButtons {
		at += time.Second
		edges = append(edges, rawEdge{at, b, false})
	}
	return edges
}

type interval struct{ p0, p1 time.Duration }

// held computes, independently of Chords, when button was down after
// debouncing: a level counts from its first edge if it then held for at
// least Debounce. The last edges are clean releases.
func held(edges []rawEdge, button string) []interval {
	var changes []rawEdge
	level := false
	for _, e := range edges {
		if e.button == button && e.pressed != level {
			changes = append(changes, e)
			level = e.pressed
		}
	}
	var (
		out   []interval
		down  bool
		start time.Duration
	)
	for i, c := range changes {
		stable := i == len(changes)-1 || changes[i+1].at-c.at >= Debounce
		if !stable || c.pressed == down {
			continue
		}
		down = c.pressed
		if down {
			start = c.at
		} else {
			out = append(out, interval{start, c.at})
		}
	}
	return out
}

// truth is what the rules say the edges must produce.
type truth struct {
	counts map[Action]int
	chords []time.Duration // starts of chords held ≥ ResetChord
}

func groundTruth(edges []rawEdge) truth {
	rec, mark, pair := held(edges, ButtonRec), held(edges, ButtonMark), held(edges, ButtonPair)
	tr := truth{counts: map[Action]int{ActionMark: len(mark)}}
	overlaps := func(x interval, from, to time.Duration) bool { return x.p0 < to && x.p1 > from }
	for _, r := range rec {
		if !slices.ContainsFunc(pair, func(q interval) bool { return overlaps(q, r.p0, r.p1) }) {
			tr.counts[ActionRec]++
		}
		for _, q := range pair {
			s, e := max(r.p0, q.p0), min(r.p1, q.p1)
			if e > s && e-s >= ResetChord {
				tr.chords = append(tr.chords, s)
			}
		}
	}
	for _, q := range pair {
		long := q.p1-q.p0 >= LongPress
		until := q.p1
		if long {
			until = q.p0 + LongPress
		}
		if slices.ContainsFunc(rec, func(r interval) bool { return overlaps(r, q.p0, until) }) {
			continue
		}
		if long {
			tr.counts[ActionPair]++
		} else {
			tr.counts[ActionOther]++
		}
	}
	tr.counts[ActionReset] = len(tr.chords)
	slices.Sort(tr.chords)
	return tr
}

// check compares what came out with the ground truth. latest says by when
// a reset due at due must have been reported.
func (tr truth) check(t *testing.T, got []stamped, latest func(due time.Duration) time.Duration) {
	t.Helper()
	counts := map[Action]int{}
	var resets []time.Duration
	for _, s := range got {
		if s.a < ActionRec || s.a > ActionOther {
			t.Fatalf("invalid action %d at %v", s.a, s.at)
		}
		counts[s.a]++
		if s.a == ActionReset {
			resets = append(resets, s.at)
		}
	}
	for _, a := range []Action{ActionRec, ActionMark, ActionPair, ActionReset, ActionOther} {
		if counts[a] != tr.counts[a] {
			t.Errorf("%v: got %d, want %d", a, counts[a], tr.counts[a])
		}
	}
	if len(resets) != len(tr.chords) {
		t.Fatalf("%d resets for %d chords held ≥ %v", len(resets), len(tr.chords), ResetChord)
	}
	for i, at := range resets {
		due := tr.chords[i] + ResetChord
		if at < due || at > latest(due) {
			t.Errorf("reset %d at %v; its chord began at %v, so due at %v", i, at, tr.chords[i], due)
		}
	}
	t.Logf("actions: %v", counts)
}

func TestToddlerChords(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		edges := toddler(seed, 20000)
		tr := groundTruth(edges)
		for _, a := range []Action{ActionRec, ActionMark, ActionPair, ActionReset, ActionOther} {
			if tr.counts[a] == 0 {
				t.Fatalf("seed %d: the toddler never produced %v: make the test meaner", seed, a)
			}
		}
		s := newSim(t)
		for _, e := range edges {
			s.edge(e.at, e.button, e.pressed)
		}
		s.until(s.now + time.Minute)
		// Resets are decided at their deadline, or once an undecided
		// release across it turns out to be a bounce.
		tr.check(t, s.got, func(due time.Duration) time.Duration { return due + Debounce })
	}
}
