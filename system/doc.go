// Package system is the daemon's core: configuration, the state machine
// that turns front-panel events into recordings, the recorder that runs one
// recording through capture into storage, the clock, and the process
// lifecycle (signals, systemd notify and watchdog, memory locking).
//
// It must never log personal data: log lines carry event types, opaque
// recording ids, sizes and durations only.
package system
