// Package device is the vocabulary of the recording device's state, shared
// by the daemon core that owns it (system), the front panel that shows it
// (ui) and the programs that wire them (cmd/attuned): the State the panel
// names, the Status snapshot indicators and APIs read, and the Events the
// practitioner's buttons (or the system) send.
//
// It holds types and constants only. It must never import anything but
// the standard library, never hold state or start goroutines, and never
// decide anything: what an event does is system's, what a state looks like
// is ui's.
package device
