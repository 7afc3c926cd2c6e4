package ui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"attune.dev/attune/board/hw"
	"github.com/jonboulle/clockwork"
)

// edgeWait bounds each wait for an edge, so that a cancelled context is
// noticed within it, and is how often a level is re-read in case an edge
// was lost.
const edgeWait = 500 * time.Millisecond

type edge struct {
	button  string
	at      time.Time
	pressed bool
}

// RunButtons watches the buttons and calls out with each Action (see Chords
// for the rules) until ctx is done; then it returns nil once its goroutines
// have ended, which takes up to half a second.
//
// The pins must already be configured for input with both edges (the board
// does that); RunButtons only waits for edges and reads levels. Each button
// needs a known Name (ButtonRec, ButtonMark, ButtonPair), at most once; a
// board may lack some. A button already held when RunButtons starts is
// ignored until released. out is called from a single goroutine, in order;
// it should return promptly.
func RunButtons(ctx context.Context, clock clockwork.Clock, buttons []hw.Button, out func(Action)) error {
	return runButtons(ctx, clock, buttons, out, nil)
}

// runButtons is RunButtons; handled, if not nil, is called after each edge
// has been fed to the machine and the timer re-armed (tests use it to know
// when they may advance the clock).
func runButtons(ctx context.Context, clock clockwork.Clock, buttons []hw.Button, out func(Action), handled func()) error {
	if clock == nil {
		return errors.New("ui: buttons: no clock")
	}
	if out == nil {
		return errors.New("ui: buttons: no action callback")
	}
	seen := map[string]bool{}
	for i, b := range buttons {
		if _, ok := keyIndex(b.Name); !ok {
			return fmt.Errorf("ui: buttons: unknown button %q (want %s, %s or %s)", b.Name, ButtonRec, ButtonMark, ButtonPair)
		}
		if seen[b.Name] {
			return fmt.Errorf("ui: buttons: button %q given twice", b.Name)
		}
		seen[b.Name] = true
		if b.Pin == nil {
			return fmt.Errorf("ui: buttons: button %d (%s) has no pin", i, b.Name)
		}
	}

	var m Chords
	start := clock.Now()
	initial := make([]bool, len(buttons))
	for i, b := range buttons {
		initial[i] = b.Pressed(b.Pin.Read())
		m.Initial(start, b.Name, initial[i])
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	edges := make(chan edge)
	for i, b := range buttons {
		wg.Go(func() { watch(ctx, clock, b, initial[i], edges) })
	}

	var (
		timer  clockwork.Timer
		timerC <-chan time.Time
		armed  time.Time
	)
	stop := func() {
		if timer != nil {
			timer.Stop()
		}
		timer, timerC = nil, nil
	}
	defer stop()
	rearm := func() {
		at, ok := m.Deadline()
		if ok && timer != nil && at.Equal(armed) {
			return
		}
		stop()
		if ok {
			timer, armed = clock.NewTimer(clock.Until(at)), at
			timerC = timer.Chan()
		}
	}
	emit := func(as []Action) {
		for _, a := range as {
			out(a)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-edges:
			emit(m.Edge(e.at, e.button, e.pressed))
			rearm()
			if handled != nil {
				handled()
			}
		case <-timerC:
			timer, timerC = nil, nil
			emit(m.Tick(clock.Now()))
			rearm()
		}
	}
}

// watch waits for b's edges and sends each level, dated, to edges until ctx
// is done. pressed is the level last sent (or initially read). A level that
// changed without an edge being reported is sent when the wait times out.
func watch(ctx context.Context, clock clockwork.Clock, b hw.Button, pressed bool, edges chan<- edge) {
	for ctx.Err() == nil {
		began := clock.Now()
		got := b.Pin.WaitForEdge(edgeWait)
		if ctx.Err() != nil {
			return
		}
		now := clock.Now()
		p := b.Pressed(b.Pin.Read())
		if !got && p == pressed {
			// A pin that returns at once without an edge must not make
			// this a busy loop: wait out the rest of the period.
			if rest := edgeWait - now.Sub(began); rest > edgeWait/2 {
				select {
				case <-ctx.Done():
					return
				case <-clock.After(rest):
				}
			}
			continue
		}
		pressed = p
		select {
		case edges <- edge{button: b.Name, at: now, pressed: p}:
		case <-ctx.Done():
			return
		}
	}
}
