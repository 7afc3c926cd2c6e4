package ui

import "time"

// Action is what the practitioner asked for with the buttons.
type Action int

const (
	// ActionRec: REC pressed and released (start or stop, or confirm a reset).
	ActionRec Action = iota + 1
	// ActionMark: MARK pressed.
	ActionMark
	// ActionPair: PAIR held for LongPress: open a pairing window.
	ActionPair
	// ActionReset: REC and PAIR held together for ResetChord: ask for a
	// factory reset (which system must then confirm).
	ActionReset
	// ActionOther: any other press (cancels a pending reset confirmation).
	ActionOther
)

func (a Action) String() string {
	switch a {
	case ActionRec:
		return "rec"
	case ActionMark:
		return "mark"
	case ActionPair:
		return "pair"
	case ActionReset:
		return "reset"
	case ActionOther:
		return "other"
	}
	return "unknown"
}

// Button names, as hw.Button.Name spells them.
const (
	ButtonRec  = "rec"
	ButtonMark = "mark"
	ButtonPair = "pair"
)

// Timing of the buttons.
const (
	Debounce   = 30 * time.Millisecond
	LongPress  = 3 * time.Second
	ResetChord = 10 * time.Second
)

// Timing of the indicators.
const (
	BlinkSlow = 500 * time.Millisecond  // half-period: booting, pairing, full, confirm reset
	BlinkFast = 125 * time.Millisecond  // half-period: fault, resetting, the mark flash
	MarkFlash = time.Second             // how long "nArK" shows after a mark
	PairHalf  = 1500 * time.Millisecond // each half of the pairing code
	CaseCycle = 6 * time.Second         // ready: free minutes, then the case number, in turn
	CaseShow  = 1500 * time.Millisecond // of each CaseCycle, the case number's share (at its end)
	Refresh   = 250 * time.Millisecond  // how often Follow re-reads the status
)

// Color of the status LED.
type Color string

const (
	Off   Color = "off"
	Red   Color = "red"
	Green Color = "green"
	Blue  Color = "blue"
	Amber Color = "amber"
	White Color = "white" // all channels: resetting
)

// Indication is what the front panel shows for a state: the LED, whether it
// blinks, and four display characters (Text, e.g. "PAIr", "00:07" with the
// colon, "  42").
//
// A blinking LED shows LED for Blink, then Alt for Blink, and so on; Alt is
// usually empty (off), Amber for storage_full's red/amber alternation.
type Indication struct {
	State string        `json:"state"` // the state shown: a system state name, "mark" or "fault"
	LED   Color         `json:"led"`
	Alt   Color         `json:"alt,omitempty"`
	Blink time.Duration `json:"blink_ns,omitempty"` // half-period; 0 = steady
	Text  string        `json:"text"`
}
