// Package custodytest has test doubles for package custody: Log, an audit
// chain kept in memory and written with custody.Seal as the device's log
// writer (system.Audit) writes its file, so that tests of verifiers (the
// laptop) can play a device's history without the device's code; Clock, a
// fake clock for a chain's writer; and Record, varied test records.
//
// It is for tests only and must never be imported by a program.
package custodytest
