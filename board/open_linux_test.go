//go:build linux

package board

import (
	"path/filepath"
	"strings"
	"testing"
)

// On a machine without GPIO character devices (a build host, CI), Open
// fails naming the first pin and what to check.
func TestOpenWithoutGPIO(t *testing.T) {
	if chips, _ := filepath.Glob("/dev/gpiochip*"); len(chips) > 0 {
		t.Skip("this machine has GPIO chips")
	}
	p, err := LoadProfile("pi-ref")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(p)
	if err == nil {
		_ = b.Close()
		t.Fatal("Open succeeded without GPIO chips")
	}
	want := "open board pi-ref: pin GPIO17 (button rec): not found; is this a Raspberry Pi with gpiochip access (run as root or in group gpio)?"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v\nwant prefix %s", err, want)
	}
}
