// Package boardtest has test helpers for the board package's drivers: a
// RecordingPin that records every level a driver writes, in order across
// the pins of one Trace, so a test can decode a bit-banged protocol
// (DecodeTM1637) and compare it with the datasheet. The fakes of the
// hardware interfaces themselves (Display, LED, Battery) are in hw/hwtest.
//
// It is for tests only: it never touches hardware, never sleeps except
// where a caller asks to wait, and never logs.
package boardtest
