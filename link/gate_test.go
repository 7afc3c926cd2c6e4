package link_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
)

// gated serves a device with the given cap and handshake timeout on an
// in-memory network.
func gated(t *testing.T, max int, handshake time.Duration) (*linktest.Network, *linktest.Listener, *linktest.Backend, string) {
	t.Helper()
	b, err := linktest.NewBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := &link.Server{Backend: b, Key: newKey(t), Log: slog.New(slog.DiscardHandler), MaxPending: max, HandshakeTimeout: handshake}
	pin, err := srv.Pin()
	if err != nil {
		t.Fatal(err)
	}
	n := &linktest.Network{}
	ln, err := n.Listen(deviceAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, ln, b, pin
}

// closedNow reports, without waiting, whether the device closed c.
func closedNow(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Unix(1, 0))
	_, err := c.Read(make([]byte, 1))
	c.SetReadDeadline(time.Time{})
	switch {
	case err == io.EOF:
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false
	}
	t.Fatalf("read: %v", err)
	return false
}

// dialIdle opens n connections that never say a word. Each dial returns
// once the device accepted it, and the device decides on a connection
// before it accepts the next: all but the last are settled on return.
func dialIdle(t *testing.T, n *linktest.Network, count int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range count {
		c, err := n.DialContext(t.Context(), "tcp", deviceAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// TestUnauthenticatedConnectionsCapped: a flood of connections that never
// finish a handshake holds at most MaxPending of them open on the device;
// the rest are closed as soon as they are accepted, and the paired
// laptop's connection is not counted against the cap.
func TestUnauthenticatedConnectionsCapped(t *testing.T) {
	const max = 4
	n, ln, b, devPin := gated(t, max, 0)
	laptop, laptopPin := newCert(t, "laptop")
	b.SetLaptopPin(laptopPin)
	c, err := link.NewClient(n, deviceAddr, laptop, devPin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The laptop's connection stays open (keep-alive) but holds no slot.
	flood := dialIdle(t, n, 200)
	dialIdle(t, n, 1) // settles the last of the flood
	for i, fc := range flood {
		if got, want := closedNow(t, fc), i >= max; got != want {
			t.Fatalf("connection %d of the flood: closed %v, want %v", i, got, want)
		}
	}
	// The laptop's, max of the flood, and perhaps the settling one a moment.
	if open := ln.Open(); open < 1+max || open > 1+max+1 {
		t.Errorf("device holds %d connections open, want %d", open, 1+max)
	}
	// The paired laptop still gets through on its connection.
	if _, err := c.Status(t.Context()); err != nil {
		t.Fatalf("paired laptop during the flood: %v", err)
	}
}

// TestSlowHandshakeCut: a peer that starts a handshake and stalls is cut
// off after HandshakeTimeout, and its slot is free again.
func TestSlowHandshakeCut(t *testing.T) {
	const max = 2
	n, _, _, _ := gated(t, max, 100*time.Millisecond)
	slow := dialIdle(t, n, max)
	for _, c := range slow {
		if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil { // a TLS record header, then nothing
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(8 * time.Second)) // the old 10 s would miss it
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("stalled handshake %d was not cut: %v", i, err)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stalled handshakes cut after %v, want about 100ms", d)
	}
	// Their slots are free again.
	again := dialIdle(t, n, max)
	dialIdle(t, n, 1)
	for i, c := range again {
		if closedNow(t, c) {
			t.Errorf("connection %d after the cut ones was refused", i)
		}
	}
}
