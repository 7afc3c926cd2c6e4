package link

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"attune.dev/attune/custody"
)

// Dialer makes network connections; *net.Dialer is one, and tests pass
// in-memory ones (linktest).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// LaptopPayload is what the laptop gives the device when pairing.
type LaptopPayload struct {
	// LaptopCertPin is the pin of the laptop's TLS certificate (custody.Pin).
	LaptopCertPin string
	// Recipients are the case's age recipients, one per entry.
	Recipients []string
	// CaseRef is an opaque case reference (no personal data).
	CaseRef string
	// Now is the laptop's clock; zero means time.Now().
	Now time.Time
}

// DevicePairing is what the laptop learns from a successful pairing.
type DevicePairing struct {
	// DevicePin is the pin of the device's certificate, to pass to
	// NewClient.
	DevicePin string
	DeviceID  string
	// ClockSet says whether the device accepted the laptop's clock.
	ClockSet bool
}

// ErrWrongCode is returned by Pair when the device rejected the code. (A
// machine in the middle of the connection looks the same to both sides.)
var ErrWrongCode = errors.New("wrong code")

// pairTimeout bounds a whole pairing exchange.
const pairTimeout = 30 * time.Second

// NormalizeCode accepts a pairing code as people type it ("123 456",
// "123-456") and returns its six digits.
func NormalizeCode(code string) (string, error) {
	var b strings.Builder
	for _, r := range code {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-':
		default:
			return "", errors.New("the pairing code is the 6 digits on the device's display")
		}
	}
	if b.Len() != 6 {
		return "", errors.New("the pairing code is the 6 digits on the device's display")
	}
	return b.String(), nil
}

// Pair pairs with the device at addr using the code on its display. Both
// requests go over one TLS connection; the device's certificate pin seen in
// its handshake is bound into the key exchange, so a machine in the middle
// with another certificate cannot pair even with the right code. On
// success the device holds payload (the laptop's pin, the case's
// recipients, the clock) and the returned DevicePairing holds the device's
// pin.
func Pair(ctx context.Context, dial Dialer, addr, code string, payload LaptopPayload) (DevicePairing, error) {
	code, err := NormalizeCode(code)
	if err != nil {
		return DevicePairing{}, fmt.Errorf("pair: %v", err)
	}
	if !custody.ValidPin(payload.LaptopCertPin) {
		return DevicePairing{}, errors.New("pair: bad laptop certificate pin")
	}
	if _, err := NewCase(payload.Recipients, payload.CaseRef); err != nil {
		return DevicePairing{}, fmt.Errorf("pair: %v", err)
	}
	now := payload.Now
	if now.IsZero() {
		now = time.Now()
	}
	plain, err := json.Marshal(laptopWire{
		LaptopCertPin: payload.LaptopCertPin,
		Recipients:    payload.Recipients,
		CaseRef:       payload.CaseRef,
		Now:           now.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return DevicePairing{}, fmt.Errorf("pair: %v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	pc, err := dialPairing(ctx, dial, addr)
	if err != nil {
		return DevicePairing{}, err
	}
	defer pc.close()

	msgA, st := cpaceStart(code, cpaceCI(pc.pinRaw))
	var sr startResponse
	if err := pc.post(ctx, "/pair/start", startRequest{MsgA: msgA}, func(r io.Reader) (err error) {
		sr, err = parseStartResponse(r)
		return err
	}); err != nil {
		return DevicePairing{}, err
	}
	key, err := st.finish(sr.MsgB)
	if err != nil {
		return DevicePairing{}, fmt.Errorf("pair: the device sent a malformed answer: %v", err)
	}
	k := deriveKeys(key, transcriptHash(pc.pinRaw, sr.Session, msgA, sr.MsgB))
	fr := finishRequest{Session: sr.Session, Confirm: k.laptopConfirm()}
	fr.Sealed = k.seal(roleLaptop, k.h1, plain)
	var fin finishResponse
	if err := pc.post(ctx, "/pair/finish", fr, func(r io.Reader) (err error) {
		fin, err = parseFinishResponse(r)
		return err
	}); err != nil {
		return DevicePairing{}, err
	}
	return verifyDevice(k, fr, fin, pc.pin)
}

// verifyDevice checks the device's confirmation and payload.
func verifyDevice(k pairKeys, fr finishRequest, fin finishResponse, seenPin string) (DevicePairing, error) {
	h2 := k.h2(fr.Confirm, fr.Sealed)
	if !hmac.Equal(fin.Confirm, k.mac(roleDevice, h2)) {
		return DevicePairing{}, errors.New("pair: the device did not prove it knows the code: something on this network may be intercepting the connection; pair over the USB link instead")
	}
	b, err := k.open(roleDevice, h2, fin.Sealed)
	if err != nil {
		return DevicePairing{}, errors.New("pair: the device's answer does not open: something on this network may be intercepting the connection; pair over the USB link instead")
	}
	dev, err := parseDevicePayload(b)
	if err != nil {
		return DevicePairing{}, fmt.Errorf("pair: the device sent a malformed answer: %v", err)
	}
	if dev.DeviceCertPin != seenPin {
		return DevicePairing{}, errors.New("pair: the device's key is not the one on this connection: something on this network is intercepting it; pair over the USB link instead")
	}
	return DevicePairing{DevicePin: dev.DeviceCertPin, DeviceID: dev.DeviceID, ClockSet: dev.ClockSet}, nil
}

// pairConn is the one TLS connection a pairing runs over.
type pairConn struct {
	addr   string
	tc     *tls.Conn
	br     *bufio.Reader
	pin    string
	pinRaw []byte
	stop   func() bool
}

func dialPairing(ctx context.Context, dial Dialer, addr string) (*pairConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pair: bad device address %q: host:port expected", addr)
	}
	c, err := dial.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pair: cannot reach the device at %s: %v; is it plugged in or on this network?", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	tc := tls.Client(c, &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: host,
		// The device's certificate is self-signed and not known yet: the
		// key exchange authenticates it instead (its pin is bound in).
		InsecureSkipVerify: true,
		NextProtos:         []string{"http/1.1"},
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		stop()
		c.Close()
		return nil, fmt.Errorf("pair: TLS with the device at %s failed: %v", addr, err)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		stop()
		tc.Close()
		return nil, errors.New("pair: the device sent no certificate")
	}
	pin := custody.Pin(certs[0])
	raw, _ := pinBytes(pin)
	return &pairConn{addr: addr, tc: tc, br: bufio.NewReader(tc), pin: pin, pinRaw: raw, stop: stop}, nil
}

func (pc *pairConn) close() {
	pc.stop()
	pc.tc.Close()
}

// post sends one request on the connection and parses a 200 answer with
// parse; any other answer becomes an error saying what to do.
func (pc *pairConn) post(ctx context.Context, path string, body any, parse func(io.Reader) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("pair: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+pc.addr+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("pair: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := req.Write(pc.tc); err != nil {
		return pc.netErr(ctx, err)
	}
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		return pc.netErr(ctx, err)
	}
	defer resp.Body.Close()
	body2 := io.LimitReader(resp.Body, maxBody)
	if resp.StatusCode == http.StatusOK {
		if err := parse(body2); err != nil {
			return fmt.Errorf("pair: the device sent a malformed answer: %v", err)
		}
		return nil
	}
	msg := readErrorBody(body2)
	switch resp.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("pair: %w: check the 6 digits on the device's display and try again (after %d wrong codes the device closes the window); if the code was right, something on this network may be intercepting the connection: pair over the USB link instead", ErrWrongCode, MaxWrongCodes)
	case http.StatusConflict:
		return fmt.Errorf("pair: %s", orDefault(msg, "no pairing window is open: hold PAIR on the device for 3 seconds, then use the code it shows"))
	case http.StatusGone:
		return fmt.Errorf("pair: %s", orDefault(msg, "the pairing window is closed: hold PAIR on the device to get a new code"))
	case http.StatusTooManyRequests:
		return fmt.Errorf("pair: %s", orDefault(msg, "too many attempts: hold PAIR on the device to get a new code"))
	}
	return fmt.Errorf("pair: the device refused (%s): %s", sanitize(resp.Status, 64), orDefault(msg, "no reason given"))
}

func (pc *pairConn) netErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("pair: the device at %s did not answer in time; is it still in pairing mode?", pc.addr)
	}
	return fmt.Errorf("pair: connection to the device at %s failed: %v", pc.addr, err)
}

// readErrorBody extracts {"error": "..."} from an error answer, bounded and
// stripped of anything unprintable.
func readErrorBody(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4<<10))
	var e apiError
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	return sanitize(e.Error, 300)
}

func sanitize(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
