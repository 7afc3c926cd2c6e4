package system

import (
	"errors"
	"net"
	"testing"
)

// TestListenLinkInterfaces: a listen address without a host listens on the
// link interfaces' addresses only — not on loopback, not on every
// interface — and waits (errNoAddress) while they have none.
func TestListenLinkInterfaces(t *testing.T) {
	name, ip := ipv4Interface(t)
	ln, err := listenLink(":0", []string{name}, interfaceAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if m, ok := ln.(*multiListener); ok {
		for _, a := range m.Addrs() {
			if tcp := a.(*net.TCPAddr); tcp.IP.IsUnspecified() || tcp.IP.IsLoopback() {
				t.Errorf("listening on %v", a)
			}
		}
	} else {
		t.Fatalf("listener %T", ln)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		t.Fatalf("dial the interface's address: %v", err)
	}
	c.Close()
	(<-accepted).Close()
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port)); err == nil {
		c.Close()
		t.Errorf("the link answers on loopback")
	}

	// Interfaces without an address (usb0 before the cable, or missing),
	// or with only loopback addresses: nothing to listen on yet.
	loopOnly := func(string) ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}}, nil
	}
	notHere := func(string) ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.IPv4(192, 0, 2, 1), Mask: net.CIDRMask(24, 32)}}, nil // TEST-NET-1
	}
	for _, tc := range []struct {
		ifaces []string
		addrs  func(string) ([]net.Addr, error)
	}{
		{[]string{"attune-none0"}, interfaceAddrs},
		{[]string{"usb0"}, loopOnly},
		// Listed but not bindable: usb0's IPv6 link-local address while
		// it is tentative (make hil-arm64's gadget scenario bound it
		// then and failed), here an address this machine lacks.
		{[]string{"usb0"}, notHere},
	} {
		if ln, err := listenLink(":0", tc.ifaces, tc.addrs); !errors.Is(err, errNoAddress) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("%v: %v, want errNoAddress", tc.ifaces, err)
		}
	}
	// A host listens there, interfaces or not.
	ln2, err := listenLink("127.0.0.1:0", []string{"attune-none0"}, interfaceAddrs)
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()
}

func TestConfigListenNeedsInterfaces(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Listen != ":8443" || len(c.Link.Interfaces) != 1 || c.Link.Interfaces[0] != "usb0" {
		t.Errorf("defaults: listen %q on %v", c.Listen, c.Link.Interfaces)
	}
	c.Link.Interfaces = nil
	if err := c.Validate(); err == nil {
		t.Errorf(":8443 without interfaces validated")
	}
	c.Listen = "0.0.0.0:8443"
	if err := c.Validate(); err != nil {
		t.Errorf("every interface, asked for: %v", err)
	}
}

// ipv4Interface is a real interface with an IPv4 address, to stand in
// for usb0.
func ipv4Interface(t *testing.T) (string, net.IP) {
	t.Helper()
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && ifc.Flags&net.FlagUp != 0 {
				return ifc.Name, ipn.IP
			}
		}
	}
	t.Skip("no network interface with an IPv4 address")
	return "", nil
}

// TestListenLinkSkipsUnusableAddresses: an address the kernel will not bind
// yet (an IPv6 address in duplicate address detection; here one the host
// does not have) is skipped: the link listens on the others, and with
// nothing else it waits for an address instead of the daemon failing.
func TestListenLinkSkipsUnusableAddresses(t *testing.T) {
	absent := &net.IPNet{IP: net.ParseIP("192.0.2.77"), Mask: net.CIDRMask(24, 32)}
	only := func(string) ([]net.Addr, error) { return []net.Addr{absent}, nil }
	if ln, err := listenLink(":0", []string{"usb0"}, only); !errors.Is(err, errNoAddress) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("only an unusable address: %v, want errNoAddress", err)
	}
	name, ip := ipv4Interface(t)
	both := func(string) ([]net.Addr, error) {
		return []net.Addr{absent, &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}, nil
	}
	ln, err := listenLink(":0", []string{name}, both)
	if err != nil {
		t.Fatalf("an unusable address beside a usable one: %v", err)
	}
	defer ln.Close()
	if got := ln.Addr().(*net.TCPAddr).IP; !got.Equal(ip) {
		t.Errorf("listening on %v, want %v", got, ip)
	}
}
