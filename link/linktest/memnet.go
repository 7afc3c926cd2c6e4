package linktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Network is an in-memory network: listeners by address, and a Dialer that
// connects to them with buffered pipes (Pipe). The zero value is ready to
// use.
type Network struct {
	// OneByte makes every connection dialled from now on move at most one
	// byte per Read and per Write call, on both ends: every parser on the
	// way (TLS records, HTTP, JSON) sees its input a byte at a time.
	OneByte bool

	mu        sync.Mutex
	listeners map[string]*Listener
}

// Listen returns a listener at addr (any string, usually host:port).
func (n *Network) Listen(addr string) (*Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners == nil {
		n.listeners = map[string]*Listener{}
	}
	if l := n.listeners[addr]; l != nil && !l.closed() {
		return nil, fmt.Errorf("listen %s: address in use", addr)
	}
	l := &Listener{net: n, addr: pipeAddr(addr), conns: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// DialContext connects to the listener at addr.
func (n *Network) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: pipeAddr(addr), Err: errors.New("connection refused")}
	}
	return l.DialContext(ctx, network, addr)
}

// Listener is an in-memory net.Listener; DialContext connects to it.
type Listener struct {
	net   *Network
	addr  pipeAddr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	open  atomic.Int64
}

// Open is how many connections Accept handed out that the accepting side
// has not closed yet.
func (l *Listener) Open() int { return int(l.open.Load()) }

// countedConn is an accepted connection, counted by its listener until it
// is closed.
type countedConn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

var _ net.Listener = (*Listener)(nil)

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		l.open.Add(1)
		return &countedConn{Conn: c, l: l}, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "pipe", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops accepting; Accept and DialContext fail from then on.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *Listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// DialContext connects to this listener, whatever addr says; it waits for
// Accept.
func (l *Listener) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	a, b := Pipe(pipeAddr("client:"+string(l.addr)), l.addr)
	if l.net != nil && l.net.OneByte {
		a, b = oneByteConn{a}, oneByteConn{b}
	}
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		a.Close()
		b.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: l.addr, Err: errors.New("connection refused")}
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: l.addr, Err: ctx.Err()}
	}
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// oneByteConn reads and writes one byte per underlying call.
type oneByteConn struct{ net.Conn }

func (c oneByteConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return c.Conn.Read(p)
}

func (c oneByteConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.Conn.Write(p[n : n+1])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
