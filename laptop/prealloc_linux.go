package laptop

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f, so the filesystem allocates the
// file's blocks once rather than as the writes arrive. It is only a hint:
// a filesystem without fallocate just allocates as it goes.
func preallocate(f *os.File, size int64) {
	if size > 0 {
		unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	}
}
