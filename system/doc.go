// Package system is the daemon's core: configuration, the state machine
// that turns front-panel events into recordings, the recorder that runs one
// recording through capture into storage, the clock, the paired link's
// backend, and the process lifecycle (signals, systemd notify and watchdog,
// memory locking). Run assembles them into the daemon; cmd/attuned only
// parses flags, opens the board and wires its front panel.
//
// Everything the daemon times goes through one injected clock
// (Options.Clock, Daemon.Clock), never the time package's own, so tests
// advance a fake clock instead of sleeping.
//
// It must never log personal data: log lines carry event types, opaque
// recording ids, sizes and durations only.
package system
