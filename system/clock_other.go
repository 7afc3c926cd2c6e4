//go:build !linux

package system

func kernelClockSynced() bool { return false }
