//go:build linux

package board

import (
	"os"
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

// A missing I2C bus is named by its device file, not by periph's "no bus
// found; did you forget to call Init()?".
func TestPeriphI2CMissingBus(t *testing.T) {
	const bus = "97"
	if _, err := os.Stat("/dev/i2c-" + bus); err == nil {
		t.Skip("this machine has /dev/i2c-" + bus)
	}
	_, err := (&periphHW{}).i2c(bus)
	if err == nil || err.Error() != "/dev/i2c-97 does not exist" {
		t.Errorf("err = %v, want /dev/i2c-97 does not exist", err)
	}
}
