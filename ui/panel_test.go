package ui_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"attune.dev/attune/board/hw/hwtest"
	"attune.dev/attune/device"
	"attune.dev/attune/ui"
	"github.com/jonboulle/clockwork"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const guard = 10 * time.Second

type panelRig struct {
	t      *testing.T
	fc     *clockwork.FakeClock
	led    *hwtest.LED
	disp   *hwtest.Display
	p      *ui.Panel
	cancel context.CancelFunc
	done   chan error
}

func startPanel(t *testing.T) *panelRig {
	r := &panelRig{t: t, fc: clockwork.NewFakeClockAt(t0), led: &hwtest.LED{}, disp: &hwtest.Display{}}
	r.p = ui.NewPanel(r.fc, r.led, r.disp, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.p.Run(ctx) }()
	t.Cleanup(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
	// Run starts by showing the zero indication: LED off, display blank.
	r.waitLED(1)
	r.waitDisplay(1)
	return r
}

// waitLED waits until the LED has been set n times.
func (r *panelRig) waitLED(n int) {
	r.t.Helper()
	if !r.led.WaitSets(guard, n) {
		r.t.Fatalf("LED set %d times, want %d", r.led.Sets(), n)
	}
}

func (r *panelRig) waitDisplay(n int) {
	r.t.Helper()
	if !r.disp.WaitWrites(guard, n) {
		r.t.Fatalf("display written %d times, want %d", r.disp.Writes(), n)
	}
}

// timerArmed waits until the panel waits on its blink timer.
func (r *panelRig) timerArmed() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.fc.BlockUntilContext(ctx, 1); err != nil {
		r.t.Fatal("blink timer not armed")
	}
}

func (r *panelRig) wantLED(red, green, blue bool) {
	r.t.Helper()
	if c, _ := r.led.Last(); c != (hwtest.Colour{R: red, G: green, B: blue}) {
		r.t.Fatalf("LED is %v %v %v, want %v %v %v", c.R, c.G, c.B, red, green, blue)
	}
	if gr, gg, gb := r.p.Lit(); gr != red || gg != green || gb != blue {
		r.t.Fatalf("Lit() is %v %v %v, want %v %v %v", gr, gg, gb, red, green, blue)
	}
}

func (r *panelRig) wantText(text string) {
	r.t.Helper()
	// A blank display shows "    ".
	digits, colon, err := ui.Segments(text)
	if f, _ := r.disp.Last(); err != nil || f != (hwtest.Frame{Digits: digits, Colon: colon}) {
		r.t.Fatalf("display shows %+v, want %q", f, text)
	}
}

func TestPanelSteadyAndDisplayWrites(t *testing.T) {
	r := startPanel(t)
	ready := ui.Indication{State: "ready", LED: ui.Green, Text: "  42"}
	r.p.Show(ready)
	r.waitLED(2)
	r.waitDisplay(2)
	r.wantLED(false, true, false)
	r.wantText("  42")
	if r.p.Current() != ready {
		t.Fatalf("Current() = %+v", r.p.Current())
	}

	// A new LED, same text: the display is not written again.
	r.p.Show(ui.Indication{State: "syncing", LED: ui.Blue, Text: "  42"})
	r.waitLED(3)
	r.wantLED(false, false, true)
	// Same LED, new text: only the display is written.
	r.p.Show(ui.Indication{State: "syncing", LED: ui.Blue, Text: "  43"})
	r.waitDisplay(3)
	r.wantText("  43")
	// The same indication again: nothing written.
	r.p.Show(ui.Indication{State: "syncing", LED: ui.Blue, Text: "  43"})
	r.p.Show(ui.Indication{State: "recording", LED: ui.Red, Text: "00:07"})
	r.waitLED(4)
	r.waitDisplay(4)
	r.wantText("00:07")
	if r.led.Sets() != 4 || r.disp.Writes() != 4 {
		t.Fatalf("LED set %d times, display written %d times; want 4, 4", r.led.Sets(), r.disp.Writes())
	}
}

func TestPanelBlinkEveryHalfPeriod(t *testing.T) {
	r := startPanel(t)
	r.p.Show(ui.Indication{State: "fault", LED: ui.Red, Blink: ui.BlinkFast, Text: "Err1"})
	r.waitLED(2)
	r.wantLED(true, false, false)
	r.waitDisplay(2)
	for i := range 8 {
		r.timerArmed()
		r.fc.Advance(ui.BlinkFast - time.Millisecond)
		if r.led.Sets() != 2+i {
			t.Fatalf("half-period %d: LED changed early", i)
		}
		r.fc.Advance(time.Millisecond)
		r.waitLED(3 + i)
		on := i%2 == 1
		r.wantLED(on, false, false)
	}
	if r.disp.Writes() != 2 {
		t.Fatalf("blinking rewrote the display: %d writes", r.disp.Writes())
	}
}

func TestPanelFullAlternatesRedAmber(t *testing.T) {
	r := startPanel(t)
	r.p.Show(ui.Indicate(ui.Input{Status: device.Status{State: device.StateFull}}))
	r.waitLED(2)
	r.wantLED(true, false, false)
	r.timerArmed()
	r.fc.Advance(ui.BlinkSlow)
	r.waitLED(3)
	r.wantLED(true, true, false)
	r.timerArmed()
	r.fc.Advance(ui.BlinkSlow)
	r.waitLED(4)
	r.wantLED(true, false, false)
	r.wantText("FULL")
}

func TestPanelBlinkPhaseFromClock(t *testing.T) {
	r := startPanel(t)
	r.p.Show(ui.Indication{State: "booting", LED: ui.Amber, Blink: ui.BlinkSlow, Text: "----"})
	r.waitLED(2)
	r.timerArmed()
	// A late wake-up (the clock jumped 3.5 half-periods) lands in the right
	// phase: off.
	r.fc.Advance(3*ui.BlinkSlow + ui.BlinkSlow/2)
	r.waitLED(3)
	r.wantLED(false, false, false)
	r.timerArmed()
	r.fc.Advance(ui.BlinkSlow / 2)
	r.waitLED(4)
	r.wantLED(true, true, false)
	// A new text keeps the blink's phase; a new LED restarts it, lit.
	r.p.Show(ui.Indication{State: "booting", LED: ui.Amber, Blink: ui.BlinkSlow, Text: "-- -"})
	r.waitDisplay(3)
	r.timerArmed()
	r.fc.Advance(ui.BlinkSlow)
	r.waitLED(5)
	r.wantLED(false, false, false)
	r.p.Show(ui.Indication{State: "pairing", LED: ui.Blue, Blink: ui.BlinkSlow, Text: "123-"})
	r.waitLED(6)
	r.wantLED(false, false, true)
}

func TestPanelRunExitBlanks(t *testing.T) {
	r := startPanel(t)
	r.p.Show(ui.Indication{State: "recording", LED: ui.Red, Text: "12:34"})
	r.waitLED(2)
	r.waitDisplay(2)
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("Run did not return")
	}
	r.wantLED(false, false, false)
	if f, _ := r.disp.Last(); f != (hwtest.Frame{}) {
		t.Fatalf("display left showing %+v", f)
	}
	// Current is still what was asked for.
	if r.p.Current().Text != "12:34" {
		t.Fatalf("Current() = %+v", r.p.Current())
	}
}

func TestPanelRunExitReportsErrors(t *testing.T) {
	r := startPanel(t)
	r.led.SetErr(errors.New("i2c: nack"))
	r.disp.SetErr(errors.New("i2c: nack"))
	r.cancel()
	r.cancel = nil
	err := <-r.done
	if err == nil || err.Error() != "ui: panel: led off: i2c: nack\nui: panel: blank display: i2c: nack" {
		t.Fatalf("got %v", err)
	}
}

func TestPanelRetriesFailedWrites(t *testing.T) {
	r := startPanel(t)
	r.disp.SetErr(errors.New("bus busy"))
	r.p.Show(ui.Indication{State: "ready", LED: ui.Green, Text: "  42"})
	r.waitLED(2)
	r.timerArmed() // the retry
	r.disp.SetErr(nil)
	r.fc.Advance(time.Second)
	r.waitDisplay(2)
	r.wantText("  42")
}

func TestPanelUndisplayableTextBlanks(t *testing.T) {
	r := startPanel(t)
	r.p.Show(ui.Indication{State: "ready", LED: ui.Green, Text: "  42"})
	r.waitDisplay(2)
	r.p.Show(ui.Indication{State: "ready", LED: ui.Green, Text: "WXYZ"})
	r.waitDisplay(3)
	r.wantText("    ")
}

func TestPanelWithoutDisplay(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	led := &hwtest.LED{}
	p := ui.NewPanel(fc, led, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	p.Show(ui.Indication{State: "ready", LED: ui.Green, Text: "  42"})
	if !led.WaitFor(guard, hwtest.Green) {
		t.Fatal("LED not green")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFollow(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	p := ui.NewPanel(fc, nil, nil, nil)
	var (
		mu  sync.Mutex
		cur device.Status
	)
	asked := make(chan struct{})
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ui.Follow(ctx, fc, p, changed, func() device.Status {
			asked <- struct{}{}
			mu.Lock()
			defer mu.Unlock()
			return cur
		})
	}()
	// round waits until Follow reads the status: it has shown the last.
	round := func() {
		t.Helper()
		select {
		case changed <- struct{}{}:
		default:
		}
		select {
		case <-asked:
		case <-time.After(guard):
			t.Fatal("Follow did not read the status")
		}
	}
	round()
	shows := func(st device.Status, want string) {
		t.Helper()
		mu.Lock()
		cur = st
		mu.Unlock()
		round()
		round()
		if got := p.Current().Text; got != want {
			t.Fatalf("shows %q, want %q", got, want)
		}
	}
	rec := device.Status{State: device.StateRecording, Recording: "r1", Elapsed: 3 * time.Second}
	shows(rec, "00:03")
	rec.Marks = 1
	shows(rec, "nArK")
	fc.Advance(ui.MarkFlash - time.Millisecond)
	shows(rec, "nArK")
	fc.Advance(time.Millisecond)
	shows(rec, "00:03")
	shows(device.Status{State: device.StatePairing, Code: "271828"}, "271-")
	fc.Advance(ui.PairHalf)
	shows(device.Status{State: device.StatePairing, Code: "271828"}, "-828")
	cancel()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-asked:
		case <-time.After(guard):
			t.Fatal("Follow did not return")
		}
	}
}
