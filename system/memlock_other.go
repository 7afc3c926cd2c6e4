//go:build !linux

package system

import "errors"

// LockMemory is only implemented on Linux.
func LockMemory() error {
	return errors.New("lock memory: only implemented on linux; set lock_memory = false under [system] in the config to run without")
}
