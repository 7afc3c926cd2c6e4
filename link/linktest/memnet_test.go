package linktest

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestPipeConn runs x/net's conformance suite for net.Conn on Pipe and on
// connections through a Listener.
func TestPipeConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := Pipe(pipeAddr("a"), pipeAddr("b"))
		return a, b, func() { a.Close(); b.Close() }, nil
	})
}

func TestNetwork(t *testing.T) {
	var n Network
	ln, err := n.Listen("dev:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen("dev:1"); err == nil {
		t.Error("second listener on one address")
	}
	if _, err := n.DialContext(context.Background(), "tcp", "nobody:1"); err == nil {
		t.Error("dial to nowhere succeeded")
	}
	n.OneByte = true
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 10)
		k, _ := c.Read(buf)
		c.Write(buf[:k])
		// Take the rest before closing: closing first could fail the
		// client's write of it (the pipe is closed).
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := n.DialContext(context.Background(), "tcp", "dev:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if k, err := c.Read(buf); err != nil || k != 1 || buf[0] != 'h' {
		t.Errorf("one-byte connection read %q, %v", buf[:k], err)
	}
	c.Close()
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := n.DialContext(ctx, "tcp", "dev:1"); err == nil {
		t.Error("dial to a closed listener succeeded")
	}
	// The address is free again.
	if _, err := n.Listen("dev:1"); err != nil {
		t.Errorf("listen after close: %v", err)
	}
}
