package system

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
)

// errNoAddress: none of the link's interfaces has an address (yet).
var errNoAddress = errors.New("no address on the link's interfaces yet")

// listenLink opens the paired link's listener. An address with a host
// ("127.0.0.1:8443", "0.0.0.0:8443" for every interface) listens there.
// An address without one (":8443", the default) listens only on the
// addresses the link's interfaces have now (link.interfaces, e.g. usb0),
// not on loopback or any other interface: the device answers where the
// laptop plugs in, nowhere else. ifaceAddrs lists an interface's
// addresses (net.InterfaceByName's, in the daemon). An address listed but
// not yet bindable (IPv6 during duplicate address detection) is no
// address yet either.
func listenLink(listen string, ifaces []string, ifaceAddrs func(string) ([]net.Addr, error)) (net.Listener, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, err
	}
	if host != "" {
		return net.Listen("tcp", listen)
	}
	var hosts []string
	for _, name := range ifaces {
		addrs, err := ifaceAddrs(name)
		if err != nil {
			continue // not there (yet)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsMulticast() {
				continue
			}
			h := ipn.IP.String()
			if ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
				h += "%" + name
			}
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("listen %s on %s: %w", listen, strings.Join(ifaces, ", "), errNoAddress)
	}
	m := &multiListener{conns: make(chan net.Conn), done: make(chan struct{})}
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, port))
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			// Not usable yet: an IPv6 address still in duplicate address
			// detection, or one removed since it was listed.
			continue
		}
		if err != nil {
			m.Close()
			return nil, err
		}
		if port == "0" { // the same free port on every address
			_, port, _ = net.SplitHostPort(ln.Addr().String())
		}
		m.lns = append(m.lns, ln)
	}
	if len(m.lns) == 0 {
		return nil, fmt.Errorf("listen %s on %s: %w", listen, strings.Join(ifaces, ", "), errNoAddress)
	}
	for _, ln := range m.lns {
		m.wg.Go(func() { m.accept(ln) })
	}
	return m, nil
}

// interfaceAddrs is the addresses of the network interface name.
func interfaceAddrs(name string) ([]net.Addr, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	return ifc.Addrs()
}

// multiListener accepts on several listeners as one; Addr is the first's.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

func (m *multiListener) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			m.mu.Lock()
			if m.err == nil {
				m.err = err
			}
			m.mu.Unlock()
			m.Close()
			return
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.err != nil {
			return nil, m.err
		}
		return nil, net.ErrClosed
	}
}

// Addrs are the addresses it listens on.
func (m *multiListener) Addrs() []net.Addr {
	var out []net.Addr
	for _, ln := range m.lns {
		out = append(out, ln.Addr())
	}
	return out
}

func (m *multiListener) Close() error {
	m.once.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			ln.Close()
		}
	})
	return nil
}

func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }
