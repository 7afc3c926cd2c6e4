// Package ui is the front panel: it turns the three buttons (REC, MARK,
// PAIR) into Actions, and the daemon's status into what the status LED and
// the 4-digit 7-segment display show.
//
//   - Chords is the button state machine (debounce, long press, the reset
//     chord), pure and goroutine-free; RunButtons feeds it from the board's
//     GPIO pins.
//   - Indicate maps a status to an Indication (LED colour, blink, four
//     characters); Segments is the 7-segment font; Panel drives the LED and
//     the display; Follow keeps a Panel showing the daemon's status.
//
// ui knows nothing of video or storage, nor of the daemon or the drivers:
// it reads the daemon's status in package device's vocabulary and drives
// the panel through package hw's interfaces (WebPanel takes the simulated
// board as a SimBoard). It must never import system, board, capture, link
// or storage, so that it links no periph host or device driver.
//
// It never logs personal data: no display text (which may hold a pairing
// code), only event kinds and errors.
// All timing goes through an injected clockwork.Clock, and every goroutine it
// starts ends before the Run function that started it returns.
package ui
