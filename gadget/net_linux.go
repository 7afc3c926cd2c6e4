//go:build linux

package gadget

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
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
