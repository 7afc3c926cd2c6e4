//go:build !linux

package board

import (
	"fmt"
	"runtime"
)

// Open opens the hardware a profile describes. Hardware needs Linux; on
// this OS it returns an error.
func Open(p *Profile) (*Board, error) {
	return nil, fmt.Errorf("open board %s: hardware boards need Linux (this is %s); use the sim profile (board.NewSimFromProfile) to run here", p.Name, runtime.GOOS)
}
