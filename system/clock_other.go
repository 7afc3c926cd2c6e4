//go:build !linux

package system

import (
	"errors"
	"time"
)

func kernelClockSynced() bool { return false }

func setSystemClock(t time.Time) error {
	return errors.New("setting the system clock is only implemented on linux")
}
