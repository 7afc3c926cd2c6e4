package gadget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// The link's addresses: the device is .1, the laptop gets .2 by DHCP.
var (
	DeviceAddr = netip.MustParsePrefix("192.168.7.1/24")
	LaptopAddr = netip.MustParseAddr("192.168.7.2")
)

// LeaseTime is how long the laptop's address is leased for; it renews it
// (and gets the same one) while the cable is in.
const LeaseTime = 24 * time.Hour

// Lease is the one lease the DHCP server gives: whoever asks on the link
// (there is one laptop at the other end of a USB cable) gets Client.
type Lease struct {
	// Server is the device's address on the link (the server identifier).
	Server netip.Prefix
	// Client is the laptop's address.
	Client netip.Addr
	// Duration is the lease time.
	Duration time.Duration
}

// DefaultLease is DeviceAddr serving LaptopAddr for LeaseTime.
var DefaultLease = Lease{Server: DeviceAddr, Client: LaptopAddr, Duration: LeaseTime}

// Reply is the server's answer to req, nil for none: an OFFER to a
// DISCOVER, an ACK to a REQUEST for Client (to us, or to no server in
// particular: a laptop renewing or rebooting), a NAK to a REQUEST for any
// other address, nothing to anything else or a REQUEST for another server.
// The answers carry the address, the netmask, the lease time and the
// server identifier only: no router and no DNS server, so the laptop keeps
// its own default route and resolver and never routes its internet
// traffic through the device.
func (l Lease) Reply(req *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil
	}
	server := net.IP(l.Server.Addr().AsSlice())
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(server) {
			return nil, nil // the laptop chose another server
		}
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr // renewing: its address is in ciaddr
		}
		typ = dhcpv4.MessageTypeAck
		if !want.Equal(net.IP(l.Client.AsSlice())) {
			typ = dhcpv4.MessageTypeNak
		}
	default:
		return nil, nil
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(net.IP(l.Client.AsSlice())),
			dhcpv4.WithNetmask(net.CIDRMask(l.Server.Bits(), 32)),
			dhcpv4.WithLeaseTime(uint32(l.Duration/time.Second)),
		)
	}
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// ServeDHCP answers DHCP on ifname (UDP port 67, bound to that interface
// only) with l until ctx is done. Binding port 67 needs
// CAP_NET_BIND_SERVICE.
func ServeDHCP(ctx context.Context, ifname string, l Lease, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	handler := func(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		resp, err := l.Reply(req)
		if err != nil {
			log.Warn("dhcp: reply", "err", err)
			return
		}
		if resp == nil {
			log.Debug("dhcp: ignored", "type", req.MessageType(), "from", req.ClientHWAddr)
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
			log.Warn("dhcp: send", "to", peer, "err", err)
			return
		}
		log.Info("dhcp", "request", req.MessageType().String(), "reply", resp.MessageType().String(), "laptop", req.ClientHWAddr.String(), "address", resp.YourIPAddr.String())
	}
	srv, err := server4.NewServer(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		return fmt.Errorf("dhcp on %s: %v (port 67 needs CAP_NET_BIND_SERVICE)", ifname, err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	select {
	case <-ctx.Done():
		srv.Close()
		<-done
		return nil
	case err := <-done:
		if errors.Is(err, net.ErrClosed) && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("dhcp on %s: %v", ifname, err)
	}
}
