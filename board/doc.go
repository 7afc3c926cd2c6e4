// Package board is Attune's front panel hardware: the three buttons (REC,
// MARK, PAIR), the status LED, the 4-digit 7-segment display and the
// optional battery gauge, as described by a board profile.
//
// A Profile (TOML, built in as "pi-ref" and "sim", or a user's file) names
// the pins and chips; LoadProfile checks it and reports every mistake with
// its line and the fix. Open turns a hardware profile into a Board using
// periph.io (Linux only; elsewhere it returns an error), and NewSim gives a
// simulated Board whose buttons are pressed from code and whose LED and
// display record what they show, for tests and the development web panel.
// The Board's buttons, LED, display and battery are package hw's interfaces,
// so that ui drives them without linking these drivers; the display drivers
// translate hw's canonical segment encoding to each chip's bit order
// (TM1637, MAX7219, HT16K33). Fakes of the interfaces are in hw/hwtest;
// boardtest has the recording pins the driver tests decode.
//
// This package only moves pins: it never decides what the panel shows or
// what a button means (that is ui's), never polls buttons (buttons deliver
// edges for WaitForEdge), never logs (errors are returned, saying what to
// check), and never touches a pin the profile does not name.
package board
