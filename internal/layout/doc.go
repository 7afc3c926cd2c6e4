// Package layout holds no code: its test keeps the architecture honest.
//
// The laptop half (laptop, cmd/attune) must never link device code (the
// daemon core, the board and its periph drivers, the camera, the
// microphone library, systemd), so that attune builds for Windows and
// macOS; ui drives the front panel from the device's state vocabulary and
// must not reach into the daemon core or the drivers; the format packages
// (custody, mkv) import neither side. The test prints the import chain
// that breaks a rule.
package layout
