package ui

import (
	"context"
	"fmt"
	"time"

	"attune.dev/attune/device"
	"github.com/jonboulle/clockwork"
)

// Input is everything an indication depends on. Tracker fills in Since and
// MarkedAt from a sequence of statuses.
type Input struct {
	Status   device.Status
	Now      time.Time
	Since    time.Time // when Status.State was entered
	MarkedAt time.Time // when Status.Marks last went up in this recording; zero if not
}

// Indicate is what the panel shows for in:
//
//	state          LED                        display
//	booting        amber, blinking slowly     "----"
//	not_paired     amber                      "PAIr"
//	no_case        amber, blinking slowly     "noCA": paired, but the laptop closed the case; REC is refused
//	pairing        blue, blinking slowly      Status.Code in halves, PairHalf each: "123-", "-456", "123-", …
//	                                           ("PAIr" if the code is not six digits)
//	ready          green                      free recording minutes, right-aligned, at most 9999: "  42";
//	                                           with a case, its number (Status.Case, "c042") for the last
//	                                           CaseShow of every CaseCycle from when ready began
//	recording      red                        elapsed mm:ss with the colon lit, at most "99:59"
//	  after a mark red, flashing (BlinkFast)  "nArK" for MarkFlash
//	syncing        blue                       Status.SyncPercent, right-aligned, 0–100: "  42"
//	storage_full   red/amber alternating      "FULL"
//	fault          red, blinking fast         "Err" + code: cam 1, disk 2, rec 3, anything else 9
//	                                           (system keeps it until a short press acknowledges it)
//	resetting      white, blinking fast       "rSt "
//	confirm_reset  white, blinking slowly     "rSt?"
//	confirm_loss   white, blinking fast       "LoSE" (the reset would erase unsynced footage)
//	pair_refused   amber, blinking fast       "SynC" (sync the footage before pairing anew)
//	anything else  as fault
//
// Slow blinking is BlinkSlow on and off, fast is BlinkFast. The result's
// State is the state shown: the status's state, "mark" during the mark
// flash, "fault" for unknown states.
func Indicate(in Input) Indication {
	st := in.Status
	switch st.State {
	case device.StateBooting:
		return Indication{State: string(st.State), LED: Amber, Blink: BlinkSlow, Text: "----"}
	case device.StateNotPaired:
		return Indication{State: string(st.State), LED: Amber, Text: "PAIr"}
	case device.StatePairing:
		return Indication{State: string(st.State), LED: Blue, Blink: BlinkSlow, Text: pairText(in)}
	case device.StateNoCase:
		return Indication{State: string(st.State), LED: Amber, Blink: BlinkSlow, Text: "noCA"}
	case device.StateReady:
		if showCase(in) {
			return Indication{State: string(st.State), LED: Green, Text: st.Case}
		}
		return Indication{State: string(st.State), LED: Green, Text: number(st.MinutesLeft, 9999)}
	case device.StateRecording:
		if !in.MarkedAt.IsZero() && !in.Now.Before(in.MarkedAt) && in.Now.Sub(in.MarkedAt) < MarkFlash {
			return Indication{State: "mark", LED: Red, Blink: BlinkFast, Text: "nArK"}
		}
		return Indication{State: string(st.State), LED: Red, Text: clockText(st.Elapsed)}
	case device.StateSyncing:
		return Indication{State: string(st.State), LED: Blue, Text: number(st.SyncPercent, 100)}
	case device.StateFull:
		return Indication{State: string(st.State), LED: Red, Alt: Amber, Blink: BlinkSlow, Text: "FULL"}
	case device.StateResetting:
		return Indication{State: string(st.State), LED: White, Blink: BlinkFast, Text: "rSt "}
	case device.StateConfirmReset:
		return Indication{State: string(st.State), LED: White, Blink: BlinkSlow, Text: "rSt?"}
	case device.StateConfirmLoss:
		return Indication{State: string(st.State), LED: White, Blink: BlinkFast, Text: "LoSE"}
	case device.StatePairRefused:
		return Indication{State: string(st.State), LED: Amber, Blink: BlinkFast, Text: "SynC"}
	}
	return Indication{State: string(device.StateFault), LED: Red, Blink: BlinkFast, Text: "Err" + faultCode(st.Fault)}
}

// faultCode is the digit shown after "Err".
func faultCode(fault string) string {
	switch fault {
	case "cam":
		return "1"
	case "disk":
		return "2"
	case "rec":
		return "3"
	}
	return "9"
}

// number right-aligns n, clamped to 0…limit (at most four digits).
func number(n, limit int) string {
	return fmt.Sprintf("%4d", min(max(n, 0), limit))
}

// clockText is an elapsed time as mm:ss, at most 99:59.
func clockText(d time.Duration) string {
	s := int(max(d, 0) / time.Second)
	if s > 99*60+59 {
		s = 99*60 + 59
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// showCase reports whether the ready display shows the case number at
// in.Now instead of the free minutes.
func showCase(in Input) bool {
	c := in.Status.Case
	if len(c) != 4 || c[0] != 'c' || in.Since.IsZero() {
		return false
	}
	for _, r := range c[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	el := in.Now.Sub(in.Since)
	return el >= 0 && el%CaseCycle >= CaseCycle-CaseShow
}

// pairText is the half of the pairing code due at in.Now: "123-" then
// "-456", switching every PairHalf from when pairing began.
func pairText(in Input) string {
	code := in.Status.Code
	if len(code) != 6 {
		return "PAIr"
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return "PAIr"
		}
	}
	var half int64
	if el := in.Now.Sub(in.Since); el > 0 && !in.Since.IsZero() {
		half = int64(el/PairHalf) % 2
	}
	if half == 0 {
		return code[:3] + "-"
	}
	return "-" + code[3:]
}

// Tracker remembers what Indicate needs from earlier statuses: when the
// state was entered and when the mark count last went up. The zero value is
// ready to use; it is not safe for concurrent use.
type Tracker struct {
	started  bool
	state    device.State
	since    time.Time
	rec      string
	marks    int
	markedAt time.Time
}

// Input records st, seen at now, and returns the input for Indicate. A new
// recording (a different Status.Recording) starts counting marks afresh,
// without a flash.
func (t *Tracker) Input(st device.Status, now time.Time) Input {
	if !t.started || st.State != t.state {
		t.state, t.since = st.State, now
	}
	switch {
	case !t.started || st.Recording != t.rec:
		t.rec, t.marks, t.markedAt = st.Recording, st.Marks, time.Time{}
	case st.Marks > t.marks:
		t.marks, t.markedAt = st.Marks, now
	default:
		t.marks = st.Marks
	}
	t.started = true
	return Input{Status: st, Now: now, Since: t.since, MarkedAt: t.markedAt}
}

// Follow keeps p showing the status until ctx is done, then returns nil. It
// reads status after every receive on changed (which may be nil) and every
// Refresh, so that the recording clock, the pairing code halves and the
// mark flash move on their own.
func Follow(ctx context.Context, clock clockwork.Clock, p *Panel, changed <-chan struct{}, status func() device.Status) error {
	var tr Tracker
	tick := clock.NewTicker(Refresh)
	defer tick.Stop()
	for {
		p.Show(Indicate(tr.Input(status(), clock.Now())))
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick.Chan():
		}
	}
}
