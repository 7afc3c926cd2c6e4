package device

import "time"

// State is the daemon's state, named as the front panel shows it.
type State string

const (
	StateBooting   State = "booting"
	StateNotPaired State = "not_paired"
	// StateNoCase: paired, but the laptop closed the case the device
	// recorded to; REC is refused until the laptop sets a case.
	StateNoCase       State = "no_case"
	StatePairing      State = "pairing"
	StateReady        State = "ready"
	StateRecording    State = "recording"
	StateSyncing      State = "syncing"
	StateFull         State = "storage_full"
	StateFault        State = "fault"
	StateConfirmReset State = "confirm_reset"
	// StateConfirmLoss: a confirmed reset would erase unsynced footage;
	// REC once more confirms that loss.
	StateConfirmLoss State = "confirm_loss"
	StateResetting   State = "resetting"
	// StatePairRefused: PAIR was held while unsynced footage is on the
	// device; no window opened. Shown for a moment.
	StatePairRefused State = "pair_refused"
)

// Event is something the practitioner (or the system) asks for.
type Event int

const (
	// EventRec toggles recording, or confirms a factory reset.
	EventRec Event = iota + 1
	// EventMark marks the current moment of a recording.
	EventMark
	// EventPair opens a pairing window (PAIR held 3 s), unless unsynced
	// footage is on the device.
	EventPair
	// EventReset asks for a factory reset (REC+PAIR held 10 s); REC within
	// the confirmation window confirms it, and with unsynced footage on the
	// device a second REC within the next window confirms losing it.
	EventReset
	// EventOther is any other press: it cancels a pending confirmation or
	// an open pairing window.
	EventOther
	// EventStop stops a recording if one is running (battery nearly flat);
	// otherwise it does nothing.
	EventStop
	// EventPairingDone closes an open pairing window (paired, or too many
	// wrong codes).
	EventPairingDone
	// EventRefresh recomputes the resting state (recipients changed).
	EventRefresh
)

func (e Event) String() string {
	switch e {
	case EventRec:
		return "rec"
	case EventMark:
		return "mark"
	case EventPair:
		return "pair"
	case EventReset:
		return "reset"
	case EventOther:
		return "other"
	case EventStop:
		return "stop"
	case EventPairingDone:
		return "pairing-done"
	case EventRefresh:
		return "refresh"
	}
	return "unknown"
}

// Status is a snapshot of the daemon for indicators and APIs.
type Status struct {
	State       State
	Recording   string        // id of the open recording
	Elapsed     time.Duration // of the open recording
	Marks       int           // marks in the open recording
	MinutesLeft int           // recording time left at the current bitrate
	Fault       string        // short fault code when State is fault: "cam" (no camera, or it failed), "disk", "rec"
	Code        string        // the pairing code while pairing (shown on the display)
	SyncPercent int           // while syncing
	Battery     int           // percent, -1 without a gauge
	LastID      string        // the last finished recording
	LastReason  string        // why it ended
	Case        string        // the case recordings are sealed to, as its number shows it (custody.CaseNumber); "" without one
}

// BatteryStop is the charge (percent) at which a recording is sealed and
// no new one starts: enough left to finish cleanly.
const BatteryStop = 5
