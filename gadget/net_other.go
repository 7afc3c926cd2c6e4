//go:build !linux

package gadget

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"
)

// SetAddress is Linux only.
func SetAddress(ifname string, prefix netip.Prefix, wait time.Duration) error {
	return errors.New("gadget: the USB link needs Linux")
}

// watchLink is Linux only.
func watchLink(ctx context.Context, ifname string, log *slog.Logger) {}
