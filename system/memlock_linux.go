package system

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// LockMemory keeps the process's memory — where plaintext footage lives,
// one segment at a time — out of swap. Pages are locked as they are touched
// (MCL_ONFAULT), so resident memory does not grow. It needs CAP_IPC_LOCK
// (the packaged unit grants it, ambient, to the unprivileged attune user)
// or an unlimited RLIMIT_MEMLOCK (LimitMEMLOCK=infinity); without either
// it locks nothing and says so: locking under a small limit would make
// later allocations fail.
func LockMemory() error { return lockMemory(unix.Mlockall) }

// lockMemory is LockMemory with the mlockall(2) call passed in.
func lockMemory(mlockall func(flags int) error) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Errorf("lock memory: %v", err)
	}
	if os.Geteuid() != 0 && lim.Cur != unix.RLIM_INFINITY && !hasCapIPCLock() {
		return errors.New("lock memory: no CAP_IPC_LOCK and a memlock limit; give the daemon CAP_IPC_LOCK (AmbientCapabilities=CAP_IPC_LOCK) or LimitMEMLOCK=infinity in its systemd unit, or set lock_memory = false under [system] in the config to run without (plaintext may then reach swap)")
	}
	if err := mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return fmt.Errorf("lock memory: mlockall: %v; give the daemon CAP_IPC_LOCK (AmbientCapabilities=CAP_IPC_LOCK) and LimitMEMLOCK=infinity in its systemd unit, or set lock_memory = false under [system] in the config to run without (plaintext may then reach swap)", err)
	}
	return nil
}

// hasCapIPCLock reports whether CAP_IPC_LOCK is in the effective set.
func hasCapIPCLock() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0
}
