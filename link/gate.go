package link

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Server.MaxPending and Server.HandshakeTimeout.
const (
	DefaultMaxPending       = 32
	DefaultHandshakeTimeout = 5 * time.Second
)

// gateListener caps the connections not yet known to be the paired
// laptop's: each accepted connection takes a slot, and gives it back when
// it closes or when a request on it carries the paired laptop's
// certificate (release). A connection accepted while every slot is taken
// is closed at once, so a flood of idle or slow connections costs the
// device a bounded amount of memory.
type gateListener struct {
	net.Listener
	slots   chan struct{}
	refused atomic.Int64
}

func newGate(ln net.Listener, max int) *gateListener {
	return &gateListener{Listener: ln, slots: make(chan struct{}, max)}
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &gatedConn{Conn: c, slots: l.slots}, nil
		default:
			c.Close()
			l.refused.Add(1)
		}
	}
}

// gatedConn holds a slot of its gateListener until it closes or is
// released.
type gatedConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

// release gives the connection's slot back (once).
func (c *gatedConn) release() { c.once.Do(func() { <-c.slots }) }

func (c *gatedConn) Close() error {
	c.release() // first: once the peer sees the close, the slot is free
	return c.Conn.Close()
}

type gateKey struct{}

// withGate puts a TLS connection's gatedConn, if it has one, in the
// context its requests are served with (under its corkConn, see
// corkListener).
func withGate(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkConn); ok {
			if gc, ok := cc.Conn.(*gatedConn); ok {
				return context.WithValue(ctx, gateKey{}, gc)
			}
		}
	}
	return ctx
}

// passGate releases the slot of the connection a request came on: the
// paired laptop's connections are not counted.
func passGate(ctx context.Context) {
	if gc, ok := ctx.Value(gateKey{}).(*gatedConn); ok {
		gc.release()
	}
}
