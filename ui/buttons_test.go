package ui

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/board/hw"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// guard bounds every wait on another goroutine; it only matters if the code
// under test deadlocks.
const guard = 10 * time.Second

// rig runs RunButtons on gpiotest pins and a fake clock.
type rig struct {
	t       *testing.T
	fc      *clockwork.FakeClock
	pins    map[string]*gpiotest.Pin
	buttons []hw.Button
	level   map[string]bool // pressed, as last set
	handled chan struct{}
	actions chan stamped
	cancel  context.CancelFunc
	done    chan error
}

// newRig makes pins for the buttons; REC and PAIR are active low (pulled
// up, pressed to ground), MARK active high, to exercise both.
func newRig(t *testing.T, names ...string) *rig {
	r := &rig{
		t:       t,
		fc:      clockwork.NewFakeClockAt(t0),
		pins:    map[string]*gpiotest.Pin{},
		level:   map[string]bool{},
		handled: make(chan struct{}),
		actions: make(chan stamped, 1<<16),
	}
	for i, name := range names {
		activeLow := name != ButtonMark
		p := &gpiotest.Pin{N: name, Num: i, Clock: r.fc, EdgesChan: make(chan gpio.Level)}
		p.L = r.levelOf(activeLow, false)
		r.pins[name] = p
		r.buttons = append(r.buttons, hw.Button{Name: name, Pin: p, ActiveLow: activeLow})
	}
	return r
}

func (r *rig) levelOf(activeLow, pressed bool) gpio.Level {
	return gpio.Level(pressed != activeLow)
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() {
		r.done <- runButtons(ctx, r.fc, r.buttons, func(a Action) {
			r.actions <- stamped{r.fc.Since(t0), a}
		}, func() { r.handled <- struct{}{} })
	}()
	r.t.Cleanup(r.stop)
}

// set reports a level on button's pin and waits until RunButtons has dealt
// with it. Setting the current level again is a harmless edge that flushes
// whatever was due.
func (r *rig) set(button string, pressed bool) {
	r.t.Helper()
	b := r.buttonOf(button)
	select {
	case r.pins[button].EdgesChan <- r.levelOf(b.ActiveLow, pressed):
	case <-time.After(guard):
		r.t.Fatalf("%s pin not waiting for an edge", button)
	}
	select {
	case <-r.handled:
	case <-time.After(guard):
		r.t.Fatalf("%s edge not handled", button)
	}
	r.level[button] = pressed
}

func (r *rig) flush() { r.set(r.buttons[0].Name, r.level[r.buttons[0].Name]) }

func (r *rig) buttonOf(name string) hw.Button {
	for _, b := range r.buttons {
		if b.Name == name {
			return b
		}
	}
	r.t.Fatalf("no button %s", name)
	return hw.Button{}
}

// advanceTo moves the fake clock on to t0+d.
func (r *rig) advanceTo(d time.Duration) {
	if now := r.fc.Since(t0); d > now {
		r.fc.Advance(d - now)
	}
}

// got drains the actions reported so far.
func (r *rig) got() []stamped {
	var out []stamped
	for {
		select {
		case s := <-r.actions:
			out = append(out, s)
		default:
			return out
		}
	}
}

// next waits for one action.
func (r *rig) next() stamped {
	r.t.Helper()
	select {
	case s := <-r.actions:
		return s
	case <-time.After(guard):
		r.t.Fatal("no action")
		return stamped{}
	}
}

// stop cancels RunButtons and moves the fake clock on until the pin
// goroutines, each in a bounded WaitForEdge, notice.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	deadline := time.Now().Add(guard)
	for {
		select {
		case err := <-r.done:
			if err != nil {
				r.t.Errorf("RunButtons: %v", err)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatal("RunButtons did not return after cancel")
		}
		r.fc.Advance(edgeWait)
		runtime.Gosched()
	}
}

func TestRunButtonsLongPress(t *testing.T) {
	r := newRig(t, ButtonRec, ButtonMark, ButtonPair)
	r.start()
	r.advanceTo(time.Second)
	r.set(ButtonPair, true)
	r.advanceTo(time.Second + LongPress - ms)
	r.flush()
	if got := r.got(); len(got) != 0 {
		t.Fatalf("before 3 s: %v", got)
	}
	r.advanceTo(time.Second + LongPress)
	if s := r.next(); s != (stamped{time.Second + LongPress, ActionPair}) {
		t.Fatalf("got %v", s)
	}
	r.advanceTo(5 * time.Second)
	r.set(ButtonPair, false)
	r.advanceTo(time.Minute)
	r.flush()
	if got := r.got(); len(got) != 0 {
		t.Fatalf("after release: %v", got)
	}
}

func TestRunButtonsBouncyRecAndMark(t *testing.T) {
	r := newRig(t, ButtonRec, ButtonMark, ButtonPair)
	r.start()
	bounce := func(at time.Duration, button string, pressed bool) {
		for i := 10; i >= 0; i-- {
			r.advanceTo(at + time.Duration(10-i)*2*ms)
			r.set(button, pressed == (i%2 == 0))
		}
	}
	bounce(time.Second, ButtonRec, true)
	bounce(2*time.Second, ButtonMark, true) // settles at 2.020 s
	r.advanceTo(2020*ms + Debounce)
	if s := r.next(); s != (stamped{2020*ms + Debounce, ActionMark}) {
		t.Fatalf("got %v", s)
	}
	bounce(3*time.Second, ButtonMark, false)
	bounce(4*time.Second, ButtonRec, false)
	r.advanceTo(4020*ms + Debounce)
	if s := r.next(); s != (stamped{4020*ms + Debounce, ActionRec}) {
		t.Fatalf("got %v", s)
	}
	r.advanceTo(time.Minute)
	r.flush()
	if got := r.got(); len(got) != 0 {
		t.Fatalf("extra actions %v", got)
	}
}

func TestRunButtonsHeldAtStartIgnored(t *testing.T) {
	r := newRig(t, ButtonRec, ButtonPair)
	rec := r.pins[ButtonRec]
	rec.L = gpio.Low // active low: held
	r.start()
	r.advanceTo(time.Second)
	r.set(ButtonRec, false)
	r.advanceTo(2 * time.Second)
	r.set(ButtonRec, true)
	r.advanceTo(3 * time.Second)
	r.set(ButtonRec, false)
	r.advanceTo(time.Minute)
	r.flush()
	got := r.got()
	if len(got) != 1 || got[0].a != ActionRec {
		t.Fatalf("got %v", got)
	}
}

// TestRunButtonsLostEdge: a level that changed without an edge is noticed
// when the wait for an edge times out.
func TestRunButtonsLostEdge(t *testing.T) {
	r := newRig(t, ButtonMark)
	r.start()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.fc.BlockUntilContext(ctx, 1); err != nil { // the pin's wait for an edge
		t.Fatal(err)
	}
	p := r.pins[ButtonMark]
	p.Lock()
	p.L = gpio.High // pressed, but no edge
	p.Unlock()
	r.fc.Advance(edgeWait)
	// The pin goroutine re-reads the level and reports it: the clock must
	// then move on by Debounce for the press to count.
	select {
	case <-r.handled:
	case <-time.After(guard):
		t.Fatal("lost edge not noticed")
	}
	r.fc.Advance(Debounce)
	if s := r.next(); s.a != ActionMark {
		t.Fatalf("got %v", s)
	}
}

func TestRunButtonsReturnsOnCancel(t *testing.T) {
	r := newRig(t, ButtonRec, ButtonMark, ButtonPair)
	r.start()
	r.set(ButtonRec, true)
	r.stop() // fails the test if RunButtons does not return nil
}

func TestRunButtonsRejectsBadButtons(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	pin := func() gpio.PinIn { return &gpiotest.Pin{EdgesChan: make(chan gpio.Level)} }
	out := func(Action) {}
	for _, tc := range []struct {
		name    string
		clock   clockwork.Clock
		buttons []hw.Button
		out     func(Action)
		want    string
	}{
		{"unknown", fc, []hw.Button{{Name: "volume", Pin: pin()}}, out, `unknown button "volume"`},
		{"twice", fc, []hw.Button{{Name: ButtonRec, Pin: pin()}, {Name: ButtonRec, Pin: pin()}}, out, `"rec" given twice`},
		{"no pin", fc, []hw.Button{{Name: ButtonPair}}, out, "has no pin"},
		{"no out", fc, nil, nil, "no action callback"},
		{"no clock", nil, nil, out, "no clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RunButtons(context.Background(), tc.clock, tc.buttons, tc.out)
			if err == nil || !strings.HasPrefix(err.Error(), "ui: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ui: …%s…", err, tc.want)
			}
		})
	}
}

// TestToddlerRunButtons sends thousands of random edges through the pins
// and goroutines and checks the actions against the ground truth.
func TestToddlerRunButtons(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1000
	}
	edges := toddler(7, n)
	tr := groundTruth(edges)
	r := newRig(t, ButtonRec, ButtonMark, ButtonPair)
	r.start()
	for _, e := range edges {
		r.advanceTo(e.at)
		r.set(e.button, e.pressed)
	}
	end := edges[len(edges)-1].at + time.Minute
	r.advanceTo(end)
	r.flush()
	// Actions are stamped when RunButtons reports them: the clock may have
	// run past the deadline by then, but an edge decides everything due
	// before it.
	tr.check(t, r.got(), func(due time.Duration) time.Duration {
		i, _ := slices.BinarySearchFunc(edges, due+Debounce, func(e rawEdge, d time.Duration) int { return cmp.Compare(e.at, d) })
		if i == len(edges) {
			return end
		}
		return edges[i].at
	})
}
