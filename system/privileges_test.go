package system

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnprivilegedHints: the daemon runs as its own user with
// CAP_SYS_TIME and CAP_IPC_LOCK; what it is refused says what grants it.
func TestUnprivilegedHints(t *testing.T) {
	orig := setClock
	defer func() { setClock = orig }()
	setClock = func(time.Time) error { return unix.EPERM }
	c := &Clock{SetSystem: true}
	err := c.Set(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	if err == nil || !strings.Contains(err.Error(), "CAP_SYS_TIME") {
		t.Errorf("clock set refused: %v, want it to name CAP_SYS_TIME", err)
	}

	open := &fs.PathError{Op: "open", Path: "/dev/video0", Err: unix.EACCES}
	err = deviceAccess(open, "video")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "group video") {
		t.Errorf("camera refused: %v, want it to name group video", err)
	}
	other := errors.New("no such device")
	if deviceAccess(other, "audio") != other {
		t.Error("an error that is not about permission was changed")
	}
}
