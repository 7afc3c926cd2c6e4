package system

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// LockMemory keeps the process's memory — where plaintext footage lives,
// one segment at a time — out of swap. Pages are locked as they are touched
// (MCL_ONFAULT), so resident memory does not grow. Without CAP_IPC_LOCK and
// an unlimited RLIMIT_MEMLOCK it does nothing and says so: locking under a
// small limit would make later allocations fail.
func LockMemory() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return err
	}
	if os.Geteuid() != 0 && lim.Cur != unix.RLIM_INFINITY {
		return errors.New("memory not locked: run as root or with LimitMEMLOCK=infinity (systemd) so plaintext cannot reach swap")
	}
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
}
