package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"attune.dev/attune/board/hw"
	"github.com/jonboulle/clockwork"
)

// retryEvery is how soon a failed LED or display write is tried again.
const retryEvery = time.Second

// Panel drives the status LED and the display: Show says what to show, Run
// does the showing (blinking with the clock, writing the display only when
// its text changes, since the display bus is slow).
type Panel struct {
	clock   clockwork.Clock
	led     hw.LED     // may be nil
	display hw.Display // may be nil
	log     *slog.Logger
	wake    chan struct{}

	mu  sync.Mutex
	cur Indication

	litMu sync.Mutex // held across LED writes, so Lit waits for one under way
	lit   [3]bool
}

// NewPanel returns a panel for led and display, either of which may be nil
// (a board without a display). log may be nil.
func NewPanel(clock clockwork.Clock, led hw.LED, display hw.Display, log *slog.Logger) *Panel {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Panel{clock: clock, led: led, display: display, log: log, wake: make(chan struct{}, 1)}
}

// Show sets what the panel shows. It is cheap and safe from any goroutine.
// The blink phase restarts (LED on) only when the LED, Alt or Blink change.
func (p *Panel) Show(ind Indication) {
	p.mu.Lock()
	changed := ind != p.cur
	p.cur = ind
	p.mu.Unlock()
	if changed {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Current returns what is logically shown: the last Indication given to
// Show.
func (p *Panel) Current() Indication {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// Lit returns the LED's physical state at this instant: what it was last
// set to.
func (p *Panel) Lit() (r, g, b bool) {
	p.litMu.Lock()
	defer p.litMu.Unlock()
	return p.lit[0], p.lit[1], p.lit[2]
}

type look struct {
	led, alt Color
	blink    time.Duration
}

// Run shows what Show says until ctx is done, then turns the LED off, blanks
// the display and returns (the error of that, if any). Only one Run at a
// time. Write errors are logged once per failing spell and retried.
func (p *Panel) Run(ctx context.Context) error {
	var (
		started         bool
		cur             look
		anchor          time.Time // when the current blink began
		ledOK, textOK   bool      // shownLED, shownText are on the hardware
		shownLED        [3]bool
		shownText       string
		ledBad, dispBad bool // failing: logged already
		timer           clockwork.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ind := p.Current()
		now := p.clock.Now()
		if l := (look{ind.LED, ind.Alt, ind.Blink}); !started || l != cur {
			started, cur, anchor = true, l, now
		}
		color, wakeAt := lampAt(ind, anchor, now)
		retry := false

		if want := rgb(color); !ledOK || want != shownLED {
			if err := p.setLED(want); err != nil {
				ledOK, retry = false, true
				if !ledBad {
					p.log.Warn("status led write failed", "err", err)
					ledBad = true
				}
			} else {
				ledOK, shownLED = true, want
				if ledBad {
					p.log.Info("status led works again")
					ledBad = false
				}
			}
		}

		if p.display != nil && (!textOK || ind.Text != shownText) {
			text := ind.Text
			if text == "" {
				text = "    "
			}
			digits, colon, err := Segments(text)
			if err != nil {
				// Never log the text: it may be a pairing code.
				p.log.Error("indication not displayable, blanking", "state", ind.State, "err", err)
			}
			if err := p.display.Show(digits, colon); err != nil {
				textOK, retry = false, true
				if !dispBad {
					p.log.Warn("display write failed", "err", err)
					dispBad = true
				}
			} else {
				textOK, shownText = true, ind.Text
				if dispBad {
					p.log.Info("display works again")
					dispBad = false
				}
			}
		}

		if retry {
			if r := now.Add(retryEvery); wakeAt.IsZero() || r.Before(wakeAt) {
				wakeAt = r
			}
		}
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		var timerC <-chan time.Time
		if !wakeAt.IsZero() {
			timer = p.clock.NewTimer(wakeAt.Sub(now))
			timerC = timer.Chan()
		}
		select {
		case <-ctx.Done():
			return p.off()
		case <-p.wake:
		case <-timerC:
		}
	}
}

// off turns the LED off and blanks the display.
func (p *Panel) off() error {
	var errs []error
	if err := p.setLED([3]bool{}); err != nil {
		errs = append(errs, fmt.Errorf("ui: panel: led off: %w", err))
	}
	if p.display != nil {
		if err := p.display.Show([4]byte{}, false); err != nil {
			errs = append(errs, fmt.Errorf("ui: panel: blank display: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (p *Panel) setLED(on [3]bool) error {
	p.litMu.Lock()
	defer p.litMu.Unlock()
	if p.led != nil {
		if err := p.led.Set(on[0], on[1], on[2]); err != nil {
			return err
		}
	}
	p.lit = on
	return nil
}

// lampAt returns the colour the LED shows at now for a blink that began at
// anchor, and when that next changes (zero if steady).
func lampAt(ind Indication, anchor, now time.Time) (Color, time.Time) {
	if ind.Blink <= 0 {
		return ind.LED, time.Time{}
	}
	n := max(now.Sub(anchor), 0) / ind.Blink
	color := ind.LED
	if n%2 == 1 {
		color = ind.Alt
	}
	return color, anchor.Add((n + 1) * ind.Blink)
}

// rgb is the channels lit for a colour; unknown colours are off.
func rgb(c Color) [3]bool {
	switch c {
	case Red:
		return [3]bool{true, false, false}
	case Green:
		return [3]bool{false, true, false}
	case Blue:
		return [3]bool{false, false, true}
	case Amber:
		return [3]bool{true, true, false}
	case White:
		return [3]bool{true, true, true}
	}
	return [3]bool{}
}
