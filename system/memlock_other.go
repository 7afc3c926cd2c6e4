//go:build !linux

package system

import "errors"

// LockMemory is only implemented on Linux.
func LockMemory() error { return errors.New("memory locking is only implemented on linux") }
