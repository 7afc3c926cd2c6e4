package link

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// Errors a caller of Client may branch on.
var (
	// ErrRefused: the device does not accept this laptop's key.
	ErrRefused = errors.New("device refused our key: was it reset or paired with another laptop? pair again with attune pair")
	// ErrWrongDevice: the device's key is not the pinned one.
	ErrWrongDevice = errors.New("the device's key is not the one we paired with: is this the right device, or was it reset? pair again with attune pair")
	// ErrNotFound: the recording, segment or manifest is not on the device
	// (never was, or was acknowledged and deleted).
	ErrNotFound = errors.New("not on the device")
)

// Client is the laptop's side of the device API: mutual TLS 1.3 with the
// laptop's certificate, the device's certificate pinned.
type Client struct {
	// Timeout bounds each call except downloads (default 30 s).
	Timeout time.Duration
	// Stall bounds how long a download may go without receiving a byte
	// (default 30 s); it may take as long as it needs otherwise.
	Stall time.Duration

	addr string
	tr   *http.Transport
	hc   *http.Client
}

// NewClient returns a client for the device at addr (host:port) whose
// certificate pin is devicePin, authenticating with cert (the laptop's
// certificate and key, as from SelfSignedCert). Connections go through
// dial.
func NewClient(dial Dialer, addr string, cert tls.Certificate, devicePin string) (*Client, error) {
	if !custody.ValidPin(devicePin) {
		return nil, errors.New("client: bad device pin: 64 lowercase hex digits expected")
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, errors.New("client: no laptop certificate")
	}
	want := []byte(devicePin)
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		// Standard pinning: no CA can vouch for the device; its key must be
		// the one learnt at pairing. VerifyConnection runs either way.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrWrongDevice
			}
			if subtle.ConstantTimeCompare([]byte(custody.Pin(cs.PeerCertificates[0])), want) != 1 {
				return ErrWrongDevice
			}
			return nil
		},
	}
	tr := &http.Transport{
		DialContext:           dial.DialContext,
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   4,
		DisableCompression:    true,
		// Proxy stays nil: never send this traffic through a proxy.
	}
	return &Client{
		addr: addr,
		tr:   tr,
		hc: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Close closes idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 30 * time.Second
}

func (c *Client) stall() time.Duration {
	if c.Stall > 0 {
		return c.Stall
	}
	return 30 * time.Second
}

// Status returns the device's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, "status", http.MethodGet, "/api/v1/status", nil, &st)
	return st, err
}

// Recordings lists the recordings on the device, oldest first.
func (c *Client) Recordings(ctx context.Context) ([]*storage.Index, error) {
	var list []*storage.Index
	if err := c.call(ctx, "list recordings", http.MethodGet, "/api/v1/recordings", nil, &list); err != nil {
		return nil, err
	}
	for _, ix := range list {
		if err := checkIndex("list recordings", ix); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// checkIndex refuses an index a device sent that breaks the rules the
// device writes indexes by (storage.Index.Check): the laptop names
// directories and files after what is in it.
func checkIndex(op string, ix *storage.Index) error {
	if ix == nil {
		return fmt.Errorf("%s: the device sent an empty index; it is not behaving as an Attune device: nothing was fetched", op)
	}
	if err := ix.Check(); err != nil {
		return fmt.Errorf("%s: the device sent a malformed index (%v); it is not behaving as an Attune device: nothing was fetched", op, err)
	}
	return nil
}

// Recording returns the index of one recording.
func (c *Client) Recording(ctx context.Context, id string) (*storage.Index, error) {
	if !custody.ValidID(id) {
		return nil, fmt.Errorf("recording: bad id %q", id)
	}
	var ix storage.Index
	if err := c.call(ctx, "recording "+id, http.MethodGet, "/api/v1/recordings/"+id, nil, &ix); err != nil {
		return nil, err
	}
	if err := checkIndex("recording "+id, &ix); err != nil {
		return nil, err
	}
	return &ix, nil
}

// Segment writes segment n of recording id to w, starting at byte offset
// (to resume an interrupted download: pass the bytes already stored). It
// returns the number of bytes written. Offset equal to the segment's size
// writes nothing and succeeds.
func (c *Client) Segment(ctx context.Context, id string, n int, offset int64, w io.Writer) (int64, error) {
	body, err := c.OpenSegment(ctx, id, n, offset)
	return copyBody(w, body, err)
}

// OpenSegment starts the download of segment n of recording id from byte
// offset and returns its body, for a caller that would rather read than be
// written to. Reading it fails with the same errors Segment returns; the
// caller must close it.
func (c *Client) OpenSegment(ctx context.Context, id string, n int, offset int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("segment %s/%d", id, n)
	if !custody.ValidID(id) || n < 0 {
		return nil, fmt.Errorf("%s: bad recording id or segment number", op)
	}
	return c.open(ctx, op, fmt.Sprintf("/api/v1/recordings/%s/segments/%d", id, n), offset)
}

// Manifest writes the sealed manifest of recording id to w. (It is
// re-sealed while a recording runs, so it is always fetched whole.)
func (c *Client) Manifest(ctx context.Context, id string, w io.Writer) (int64, error) {
	op := "manifest " + id
	if !custody.ValidID(id) {
		return 0, fmt.Errorf("%s: bad recording id", op)
	}
	return c.download(ctx, op, "/api/v1/recordings/"+id+"/manifest", 0, w)
}

// Ack acknowledges segments (and the manifest) of recording id as verified
// and stored on the laptop; the device deletes them. It returns the new
// index. An unknown recording or segment is ErrNotFound, a recording of
// another laptop's case ErrOtherCase; either changes nothing.
func (c *Client) Ack(ctx context.Context, id string, segments []int, manifest bool) (*storage.Index, error) {
	if !custody.ValidID(id) {
		return nil, fmt.Errorf("ack: bad recording id %q", id)
	}
	if segments == nil {
		segments = []int{}
	}
	var ix storage.Index
	if err := c.call(ctx, "ack "+id, http.MethodPost, "/api/v1/recordings/"+id+"/ack", ackRequest{Segments: segments, Manifest: manifest}, &ix); err != nil {
		return nil, err
	}
	if err := checkIndex("ack "+id, &ix); err != nil {
		return nil, err
	}
	if ix.ID != id {
		return nil, fmt.Errorf("ack %s: the device answered with the index of %s", id, ix.ID)
	}
	return &ix, nil
}

// SetClock sets the device's wall clock.
func (c *Client) SetClock(ctx context.Context, now time.Time) (ClockStatus, error) {
	var cs ClockStatus
	err := c.call(ctx, "set clock", http.MethodPut, "/api/v1/clock", clockRequest{Now: now.UTC().Format(time.RFC3339Nano)}, &cs)
	return cs, err
}

// SetRecipients gives the device a new case's recipients for the
// recordings it starts from now on.
func (c *Client) SetRecipients(ctx context.Context, recipients []string, caseRef string) error {
	if _, err := NewCase(recipients, caseRef); err != nil {
		return fmt.Errorf("set recipients: %v", err)
	}
	return c.call(ctx, "set recipients", http.MethodPut, "/api/v1/recipients", recipientsRequest{Recipients: recipients, CaseRef: caseRef}, nil)
}

// ClearRecipients tells the device that the case it records to was
// closed: it stays paired but records nothing until a case is set.
func (c *Client) ClearRecipients(ctx context.Context) error {
	return c.call(ctx, "clear recipients", http.MethodDelete, "/api/v1/recipients", nil, nil)
}

// maxResponse bounds a JSON answer (a long recording's index is ~150 bytes
// a segment).
const maxResponse = 64 << 20

func (c *Client) call(ctx context.Context, op, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %v", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+c.addr+path, body)
	if err != nil {
		return fmt.Errorf("%s: %v", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.netErr(ctx, op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusErr(op, resp)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return c.netErr(ctx, op, err)
		}
		return fmt.Errorf("%s: the device sent a malformed answer: %s", op, sanitize(err.Error(), 300))
	}
	return nil
}

func (c *Client) download(ctx context.Context, op, path string, offset int64, w io.Writer) (int64, error) {
	body, err := c.open(ctx, op, path, offset)
	return copyBody(w, body, err)
}

// copyBody copies an opened download to w and closes it.
func copyBody(w io.Writer, body io.ReadCloser, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return io.Copy(w, body)
}

// open sends a GET for path from offset and returns the body from there:
// the rest of the file (a 206, or a 200 with the first offset bytes
// skipped), or nothing when offset is the file's size.
func (c *Client) open(ctx context.Context, op, path string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("%s: negative offset", op)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	stall := c.stall()
	body := &bodyReader{op: op, c: c, parent: parent, ctx: ctx, cancel: cancel, stall: stall}
	body.timer = time.AfterFunc(stall, cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.addr+path, nil)
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		err = body.fail(err)
		body.Close()
		return nil, err
	}
	body.r = resp.Body
	fail := func(err error) (io.ReadCloser, error) {
		body.Close()
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		// The whole file: skip what we have (a device that ignores Range).
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, body, offset); err != nil {
				return fail(err)
			}
		}
	case http.StatusPartialContent:
		start, _, _, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != offset {
			return fail(fmt.Errorf("%s: the device answered the wrong range", op))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_, _, size, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err == nil && size == offset {
			body.Close()
			return http.NoBody, nil // nothing left to fetch
		}
		return fail(fmt.Errorf("%s: offset %d is beyond the end of the file on the device; download it again from the start", op, offset))
	default:
		return fail(statusErr(op, resp))
	}
	return body, nil
}

// bodyReader is a download's body: every byte received pushes the stall
// timer back (it cancels the request when it fires), and read errors say
// what went wrong in the user's terms.
type bodyReader struct {
	op     string
	c      *Client
	r      io.ReadCloser
	parent context.Context // the caller's
	ctx    context.Context // the request's: parent, or cancelled by the timer
	cancel context.CancelFunc
	timer  *time.Timer
	stall  time.Duration
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF {
		err = b.fail(err)
	}
	return n, err
}

func (b *bodyReader) fail(err error) error {
	if b.parent.Err() == nil && b.ctx.Err() != nil {
		return fmt.Errorf("%s: no data from the device for %v; check the connection and sync again (it resumes)", b.op, b.stall)
	}
	return b.c.netErr(b.parent, b.op, err)
}

func (b *bodyReader) Close() error {
	b.timer.Stop()
	var err error
	if b.r != nil {
		err = b.r.Close()
	}
	b.cancel()
	return err
}

// parseContentRange parses "bytes first-last/size" and "bytes */size"
// (first and last are -1 then).
func parseContentRange(s string) (first, last, size int64, err error) {
	bad := errors.New("bad Content-Range")
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	if size, ok = parseUint(sz); !ok {
		return 0, 0, 0, bad
	}
	if rng == "*" {
		return -1, -1, size, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, ok = parseUint(a); !ok {
		return 0, 0, 0, bad
	}
	if last, ok = parseUint(b); !ok {
		return 0, 0, 0, bad
	}
	if first > last || last >= size {
		return 0, 0, 0, bad
	}
	return first, last, size, nil
}

func parseUint(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func statusErr(op string, resp *http.Response) error {
	msg := readErrorBody(resp.Body)
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %w", op, ErrRefused)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w (%s)", op, ErrNotFound, orDefault(msg, "not found"))
	case resp.StatusCode == http.StatusConflict && op == "reset":
		return fmt.Errorf("%s: %w", op, ErrUnsynced)
	case resp.StatusCode == http.StatusConflict && strings.HasPrefix(op, "ack "):
		return fmt.Errorf("%s: %w", op, ErrOtherCase)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%s: the device failed (%s): %s; see its log", op, sanitize(resp.Status, 64), orDefault(msg, "no reason given"))
	}
	return fmt.Errorf("%s: the device refused the request (%s): %s", op, sanitize(resp.Status, 64), orDefault(msg, "no reason given"))
}

func (c *Client) netErr(ctx context.Context, op string, err error) error {
	if errors.Is(err, ErrWrongDevice) {
		return fmt.Errorf("%s: %w", op, ErrWrongDevice)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", op, context.Canceled)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: the device at %s did not answer in time; is it plugged in and switched on?", op, c.addr)
	}
	return fmt.Errorf("%s: cannot talk to the device at %s: %v; is it plugged in and switched on?", op, c.addr, err)
}
