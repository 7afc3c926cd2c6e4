// Package procstat reads CPU times from Linux's /proc: the machine's, from
// /proc/stat, and a process's, from /proc/PID/stat. Times are in USER_HZ
// ticks there, 100 a second on every arch Linux runs these tools on.
// It is for the measuring tools (internal/benchsync, the hil guest).
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

const tick = time.Second / 100

// Machine is the CPU time all CPUs have spent busy since boot (on this
// machine's work: not idle, not waiting for I/O, not stolen by a
// hypervisor) and in all.
func Machine() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	// user nice system idle iowait irq softirq steal; guest and guest_nice
	// are already in user and nice.
	for i, s := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %v", err)
		}
		total += time.Duration(n) * tick
		if i != 3 && i != 4 && i != 7 {
			busy += time.Duration(n) * tick
		}
	}
	return busy, total, nil
}

// Process is the user and system time of process pid, and of the children
// it has reaped.
func Process(pid int) (self, children time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may contain spaces and ")": skip past the
	// last ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are 14 to 17.
	if len(f) < 15 {
		return 0, 0, errors.New("short /proc stat")
	}
	var t [4]time.Duration
	for k, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc stat: %v", err)
		}
		t[k] = time.Duration(n) * tick
	}
	return t[0] + t[1], t[2] + t[3], nil
}
