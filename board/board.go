package board

import "attune.dev/attune/board/hw"

// Board is an opened board: what ui drives.
type Board struct {
	Name    string
	Buttons []hw.Button
	LED     hw.LED
	Display hw.Display // nil if the board has none
	Battery hw.Battery // nil if the board has none, or its gauge could not be opened
	// Warnings are what Open could not open but the board works without
	// (a missing or silent battery gauge), each saying what to check; the
	// caller logs them.
	Warnings []error
	close    []func() error
}

// Close releases the hardware: lights off, display blank, pins released.
func (b *Board) Close() error {
	var first error
	for i := len(b.close) - 1; i >= 0; i-- {
		if err := b.close[i](); err != nil && first == nil {
			first = err
		}
	}
	b.close = nil
	return first
}
