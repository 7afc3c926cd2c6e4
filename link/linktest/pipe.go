package linktest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer is how many bytes a connection buffers in each direction.
// Unlike net.Pipe, whose writes block until the peer reads, a buffered
// pipe behaves like TCP: a TLS peer that aborts a handshake while the other
// is still writing its flight sends its alert instead of deadlocking.
const pipeBuffer = 256 << 10

// Pipe returns the two ends of an in-memory, buffered, full-duplex
// connection with deadlines.
func Pipe(a, b net.Addr) (net.Conn, net.Conn) {
	ab, ba := newHalf(), newHalf()
	return &pipeConn{in: ba, out: ab, local: a, remote: b}, &pipeConn{in: ab, out: ba, local: b, remote: a}
}

// half is one direction of a pipe.
type half struct {
	mu      sync.Mutex
	buf     []byte
	wclosed bool // the writing end closed: EOF once drained
	rclosed bool // the reading end closed: writes fail
	rdl     time.Time
	wdl     time.Time
	changed chan struct{} // closed and replaced on every change
}

func newHalf() *half { return &half{changed: make(chan struct{})} }

// notifyLocked wakes everyone waiting on h.
func (h *half) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func wait(ch <-chan struct{}, dl time.Time) {
	if dl.IsZero() {
		<-ch
		return
	}
	t := time.NewTimer(time.Until(dl))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func expired(dl time.Time) bool { return !dl.IsZero() && !time.Now().Before(dl) }

type pipeConn struct {
	in, out       *half
	local, remote net.Addr
}

func (c *pipeConn) Read(p []byte) (int, error) {
	h := c.in
	for {
		h.mu.Lock()
		switch {
		case h.rclosed:
			h.mu.Unlock()
			return 0, net.ErrClosed
		case len(h.buf) > 0:
			if len(p) == 0 {
				h.mu.Unlock()
				return 0, nil
			}
			n := copy(p, h.buf)
			h.buf = h.buf[n:]
			h.notifyLocked()
			h.mu.Unlock()
			return n, nil
		case h.wclosed:
			h.mu.Unlock()
			return 0, io.EOF
		case expired(h.rdl):
			h.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		ch, dl := h.changed, h.rdl
		h.mu.Unlock()
		wait(ch, dl)
	}
}

func (c *pipeConn) Write(p []byte) (int, error) {
	h := c.out
	n := 0
	for {
		h.mu.Lock()
		switch {
		case h.wclosed:
			h.mu.Unlock()
			return n, net.ErrClosed
		case h.rclosed:
			h.mu.Unlock()
			return n, io.ErrClosedPipe
		case expired(h.wdl):
			h.mu.Unlock()
			return n, os.ErrDeadlineExceeded
		case len(p) == 0:
			h.mu.Unlock()
			return n, nil
		}
		if space := pipeBuffer - len(h.buf); space > 0 {
			m := min(space, len(p))
			h.buf = append(h.buf, p[:m]...)
			p, n = p[m:], n+m
			h.notifyLocked()
			h.mu.Unlock()
			continue
		}
		ch, dl := h.changed, h.wdl
		h.mu.Unlock()
		wait(ch, dl)
	}
}

func (c *pipeConn) Close() error {
	c.in.mu.Lock()
	c.in.rclosed = true
	c.in.buf = nil
	c.in.notifyLocked()
	c.in.mu.Unlock()
	c.out.mu.Lock()
	c.out.wclosed = true
	c.out.notifyLocked()
	c.out.mu.Unlock()
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	c.in.rdl = t
	c.in.notifyLocked()
	c.in.mu.Unlock()
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	c.out.mu.Lock()
	c.out.wdl = t
	c.out.notifyLocked()
	c.out.mu.Unlock()
	return nil
}
