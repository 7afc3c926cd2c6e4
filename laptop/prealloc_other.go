//go:build !linux

package laptop

import "os"

// preallocate is a no-op where fallocate does not exist.
func preallocate(*os.File, int64) {}
