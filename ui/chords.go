package ui

import "time"

// Chords turns button edges into Actions. It is a pure state machine: no
// goroutines, no clock of its own. Feed it every level change with Edge,
// and call Tick at (or after) the time Deadline reports. The zero value is
// ready to use; it is not safe for concurrent use.
//
// # Debounce
//
// A button's debounced level follows its raw level, but only changes that
// hold for at least Debounce count: a contact bouncing with edges 1–5 ms
// apart is one press, a 20 ms blip is nothing. A change that holds is dated
// from its raw edge (the last edge of a bounce burst) and is known Debounce
// later, so actions come out Debounce after the debounced press or release.
// Deadlines are measured from those dates: "held for LongPress" means the
// debounced press and the debounced release are at least LongPress apart.
//
// # Rules
//
// A chord is REC and PAIR both down (debounced). Times are debounced times.
//
//	buttons            gesture                               action       emitted
//	MARK               press (whatever else is held)         ActionMark   at the press (+Debounce)
//	MARK               release                               none
//	REC                press, release; no chord meanwhile    ActionRec    at the release (+Debounce), however long the hold
//	PAIR               held ≥ LongPress; no chord by then    ActionPair   at press+LongPress while still held, once
//	PAIR               released sooner; no chord meanwhile   ActionOther  at the release (+Debounce)
//	PAIR               released after ActionPair             none
//	REC+PAIR (chord)   both held ≥ ResetChord                ActionReset  at chord start+ResetChord while both held, once per chord
//	REC+PAIR (chord)   either released sooner                none         (an aborted chord does nothing)
//
// Further details:
//   - A REC or PAIR press that was ever part of a chord (the other one went
//     down while it was held, or it went down while the other was held)
//     never produces its own action: no ActionRec or ActionOther on its
//     release and no ActionPair, even if the chord was aborted and it is
//     still held. An ActionPair that fired before the chord began stands.
//   - The chord starts when the second of REC and PAIR goes down; releasing
//     one and pressing it again while the other is still held starts a new
//     chord (and could ask for a reset again).
//   - MARK is independent: it neither starts nor breaks a chord, and holding
//     it does not change what REC or PAIR do.
//   - A button already held when watching begins (see Initial) does
//     nothing, and takes no part in chords, until it has been released.
//   - Held exactly LongPress or ResetChord counts: at the same instant a
//     deadline is decided before a level change.
//   - A deadline that falls within Debounce of a REC or PAIR edge before it
//     waits for that edge to be decided: if it held, the press was shorter
//     (or the chord formed first); if it was a bounce, the action comes at
//     once, up to Debounce late.
//   - Edges and ticks dated earlier than one already seen are taken as
//     happening at the latest time seen.
//   - Unknown button names are ignored.
type Chords struct {
	keys      [nKeys]key
	now       time.Time // the latest time seen
	chord     bool      // REC and PAIR both down, neither inert
	chordAt   time.Time // when the chord began
	resetDone bool      // ActionReset fired for this chord
}

const (
	kRec = iota
	kMark
	kPair
	nKeys
)

func keyIndex(name string) (int, bool) {
	switch name {
	case ButtonRec:
		return kRec, true
	case ButtonMark:
		return kMark, true
	case ButtonPair:
		return kPair, true
	}
	return 0, false
}

type key struct {
	raw      bool      // the level last reported
	rawAt    time.Time // when raw last changed
	down     bool      // the debounced level
	downAt   time.Time // when the current debounced press began
	inert    bool      // held since before watching began
	tainted  bool      // this press produces no action of its own (chord or inert)
	longDone bool      // PAIR: ActionPair fired for this press
}

// pending reports whether a raw change is waiting out Debounce.
func (k *key) pending() bool { return k.raw != k.down }

// Event kinds, in the order they are decided at the same instant.
const (
	evLong = iota
	evReset
	evChange
)

type event struct {
	at   time.Time
	kind int
	key  int
}

func (e event) before(o event) bool {
	if !e.at.Equal(o.at) {
		return e.at.Before(o.at)
	}
	if e.kind != o.kind {
		return e.kind < o.kind
	}
	return e.key < o.key
}

// Initial tells the machine a button's level when watching begins, before
// any Edge for it. A button already pressed is inert until released.
func (c *Chords) Initial(now time.Time, button string, pressed bool) {
	i, ok := keyIndex(button)
	if !ok {
		return
	}
	now = c.clamp(now)
	c.keys[i] = key{raw: pressed, rawAt: now, down: pressed, downAt: now, inert: pressed, tainted: pressed}
}

// Edge reports that button's raw level is now pressed (repeats of the
// current level are ignored) and returns the actions that became due up to
// now, oldest first.
func (c *Chords) Edge(now time.Time, button string, pressed bool) []Action {
	i, ok := keyIndex(button)
	if !ok {
		return nil
	}
	now = c.clamp(now)
	out := c.advance(now, nil)
	if k := &c.keys[i]; k.raw != pressed {
		k.raw, k.rawAt = pressed, now
	}
	// A bounce back to the debounced level may unblock an overdue deadline.
	return c.advance(now, out)
}

// Tick returns the actions that became due up to now, oldest first.
func (c *Chords) Tick(now time.Time) []Action {
	return c.advance(c.clamp(now), nil)
}

// Deadline reports when Tick must next be called, if anything is waiting.
// It may be in the past if Tick is overdue.
func (c *Chords) Deadline() (time.Time, bool) {
	var (
		best time.Time
		ok   bool
	)
	take := func(t time.Time) {
		if !ok || t.Before(best) {
			best, ok = t, true
		}
	}
	for i := range c.keys {
		if k := &c.keys[i]; k.pending() {
			take(k.rawAt.Add(Debounce))
		}
	}
	// A deadline behind an undecided REC or PAIR change waits for it, and
	// that change's own time is already taken.
	barrier, blocked := c.barrier(time.Time{}, false)
	for _, at := range c.deadlines() {
		if !blocked || !barrier.Before(at) {
			take(at)
		}
	}
	return best, ok
}

// clamp returns now, or the latest time seen if now is earlier.
func (c *Chords) clamp(now time.Time) time.Time {
	if now.Before(c.now) {
		return c.now
	}
	c.now = now
	return now
}

// deadlines returns the pending long press and reset deadlines.
func (c *Chords) deadlines() []time.Time {
	var ds []time.Time
	if at, ok := c.longAt(); ok {
		ds = append(ds, at)
	}
	if at, ok := c.resetAt(); ok {
		ds = append(ds, at)
	}
	return ds
}

func (c *Chords) longAt() (time.Time, bool) {
	p := &c.keys[kPair]
	if !p.down || p.tainted || p.longDone {
		return time.Time{}, false
	}
	return p.downAt.Add(LongPress), true
}

func (c *Chords) resetAt() (time.Time, bool) {
	if !c.chord || c.resetDone {
		return time.Time{}, false
	}
	return c.chordAt.Add(ResetChord), true
}

// barrier returns the date of the earliest REC or PAIR change that is
// pending and, if decided is set, not yet decidable at now: nothing about
// REC and PAIR after that date can be decided before it is.
func (c *Chords) barrier(now time.Time, decided bool) (time.Time, bool) {
	var (
		at time.Time
		ok bool
	)
	for _, i := range [...]int{kRec, kPair} {
		k := &c.keys[i]
		if !k.pending() || (decided && !now.Before(k.rawAt.Add(Debounce))) {
			continue
		}
		if !ok || k.rawAt.Before(at) {
			at, ok = k.rawAt, true
		}
	}
	return at, ok
}

// next returns the earliest event that can be decided at now.
func (c *Chords) next(now time.Time) (event, bool) {
	var (
		best event
		ok   bool
	)
	consider := func(e event) {
		if !ok || e.before(best) {
			best, ok = e, true
		}
	}
	barrier, blocked := c.barrier(now, true)
	if at, y := c.longAt(); y && !at.After(now) && (!blocked || !barrier.Before(at)) {
		consider(event{at, evLong, kPair})
	}
	if at, y := c.resetAt(); y && !at.After(now) && (!blocked || !barrier.Before(at)) {
		consider(event{at, evReset, kRec})
	}
	for i := range c.keys {
		k := &c.keys[i]
		if !k.pending() || now.Before(k.rawAt.Add(Debounce)) {
			continue
		}
		if i != kMark && blocked && !k.rawAt.Before(barrier) {
			continue
		}
		consider(event{k.rawAt, evChange, i})
	}
	return best, ok
}

// advance decides every event due up to now, in order, appending the
// resulting actions to out.
func (c *Chords) advance(now time.Time, out []Action) []Action {
	for {
		ev, ok := c.next(now)
		if !ok {
			return out
		}
		switch ev.kind {
		case evLong:
			c.keys[kPair].longDone = true
			out = append(out, ActionPair)
		case evReset:
			c.resetDone = true
			out = append(out, ActionReset)
		case evChange:
			out = c.change(ev.key, ev.at, out)
		}
	}
}

// change applies a debounced level change of key i dated at.
func (c *Chords) change(i int, at time.Time, out []Action) []Action {
	k := &c.keys[i]
	k.down = k.raw
	if k.down {
		k.downAt, k.inert, k.tainted, k.longDone = at, false, false, false
		switch i {
		case kMark:
			out = append(out, ActionMark)
		case kRec, kPair:
			if o := &c.keys[kRec+kPair-i]; o.down && !o.inert {
				c.chord, c.chordAt, c.resetDone = true, at, false
				k.tainted, o.tainted = true, true
			}
		}
		return out
	}
	k.inert = false
	switch i {
	case kRec:
		if !k.tainted {
			out = append(out, ActionRec)
		}
		c.chord = false
	case kPair:
		if !k.tainted && !k.longDone {
			out = append(out, ActionOther)
		}
		c.chord = false
	}
	return out
}
