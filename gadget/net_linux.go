//go:build linux

package gadget

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetAddress gives the interface ifname the address prefix (replacing it
// if it is there) and brings the interface up. It waits up to wait for the
// interface to appear.
func SetAddress(ifname string, prefix netip.Prefix, wait time.Duration) error {
	var link netlink.Link
	var err error
	for end := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		if link, err = netlink.LinkByName(ifname); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("gadget: interface %s: %v", ifname, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("gadget: address %s on %s: %v (needs CAP_NET_ADMIN)", prefix, ifname, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("gadget: %s up: %v", ifname, err)
	}
	return nil
}

// watchLink announces the link again (down and up) when the laptop seems
// to have missed its announcement (reannouncer), until ctx is done.
func watchLink(ctx context.Context, ifname string, log *slog.Logger) {
	r := newReannouncer()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			link, err := netlink.LinkByName(ifname)
			if err != nil {
				continue
			}
			a := link.Attrs()
			var rx uint64
			if a.Statistics != nil {
				rx = a.Statistics.RxPackets
			}
			if !r.step(now, a.RawFlags&unix.IFF_LOWER_UP != 0, rx) {
				continue
			}
			log.Warn("usb link: the laptop has sent nothing since it connected; announcing the link again", "interface", ifname)
			if err := netlink.LinkSetDown(link); err != nil {
				log.Warn("usb link: announce again", "err", err)
				continue
			}
			if err := netlink.LinkSetUp(link); err != nil {
				log.Warn("usb link: announce again", "err", err)
			}
		}
	}
}
