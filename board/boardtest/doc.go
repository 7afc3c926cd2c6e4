// Package boardtest has fakes of the board package's hardware for other
// packages' tests: a Display, LED and Battery that record what they are
// told, and a RecordingPin that records every level a driver writes so a
// test can decode a bit-banged protocol (DecodeTM1637).
//
// It is for tests only: it never touches hardware, never sleeps except
// where a caller asks to wait, and never logs.
package boardtest
