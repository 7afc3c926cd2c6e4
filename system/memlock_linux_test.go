package system

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLockMemoryFailureNamesTheFix: when mlockall fails, the error says
// how to give the daemon the lock, or how to run without it.
func TestLockMemoryFailureNamesTheFix(t *testing.T) {
	err := lockMemory(func(int) error { return unix.EPERM })
	if err == nil {
		t.Fatal("a failed mlockall was no error")
	}
	for _, want := range []string{"CAP_IPC_LOCK", "LimitMEMLOCK=infinity", "lock_memory = false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := lockMemory(func(int) error { return nil }); err != nil && !strings.Contains(err.Error(), "no CAP_IPC_LOCK") {
		t.Errorf("a working mlockall: %v", err)
	}
}
