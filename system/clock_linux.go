package system

import (
	"time"

	"golang.org/x/sys/unix"
)

// kernelClockSynced asks the kernel whether an NTP daemon has synchronised
// the clock (STA_UNSYNC clear in the adjtimex status).
func kernelClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}

func setSystemClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}
