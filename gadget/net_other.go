//go:build !linux

package gadget

import (
	"errors"
	"net/netip"
	"time"
)

// SetAddress is Linux only.
func SetAddress(ifname string, prefix netip.Prefix, wait time.Duration) error {
	return errors.New("gadget: the USB link needs Linux")
}
