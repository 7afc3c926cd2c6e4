package link

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

// corkConn gathers what TLS writes while it is corked and sends it in one
// write when uncorked: a 256 KB piece of a segment leaves as one socket
// write instead of sixteen 16 KB records, each its own system call and
// packet, on the device and on the laptop that receives them.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// corkListener hands out corkConns.
type corkListener struct{ net.Listener }

func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > cap(c.buf) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(c.buf) {
			return c.Conn.Write(p)
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *corkConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	if c.buf == nil {
		// A piece and its TLS framing (22 bytes per 16 KB record).
		c.buf = make([]byte, 0, sendPiece+sendPiece/256)
	}
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

type corkKey struct{}

// withCork puts a TLS connection's corkConn, if it has one, in the
// context its requests are served with.
func withCork(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkConn); ok {
			return context.WithValue(ctx, corkKey{}, cc)
		}
	}
	return ctx
}

// sendPiece is how much of a file is read and sent at a time.
const sendPiece = 256 << 10

var piecePool = sync.Pool{New: func() any { b := make([]byte, sendPiece); return &b }}

// sendWhole answers a plain GET (or HEAD) for a whole file: the common case
// of a sync, sent a piece at a time, each piece one socket write. It
// returns the bytes of the body written.
func sendWhole(w http.ResponseWriter, r *http.Request, f *os.File, size int64) (sent int64) {
	h := w.Header()
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return 0
	}
	cc, _ := r.Context().Value(corkKey{}).(*corkConn)
	buf := piecePool.Get().(*[]byte)
	defer piecePool.Put(buf)
	for {
		n, rerr := io.ReadFull(f, *buf)
		if n > 0 {
			if cc != nil {
				cc.cork()
			}
			m, werr := w.Write((*buf)[:n])
			if cc != nil {
				if err := cc.uncork(); werr == nil {
					werr = err
				}
			}
			if werr != nil {
				return sent // the laptop went away; it resumes with a Range request
			}
			sent += int64(m)
		}
		if rerr != nil {
			return sent // io.EOF or io.ErrUnexpectedEOF at the end; a read error cuts the body short, which the laptop sees
		}
	}
}
