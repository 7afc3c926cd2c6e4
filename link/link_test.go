package link_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/custody"
	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
	"attune.dev/attune/storage"
)

const deviceAddr = "device.test:8443"

// env is a device (server, fake backend, real store) on an in-memory
// network, and a laptop's key.
type env struct {
	t      *testing.T
	net    *linktest.Network
	b      *linktest.Backend
	srv    *link.Server
	devKey ed25519.PrivateKey
	devPin string

	laptop    tls.Certificate
	laptopPin string
	id        *age.X25519Identity
	rcpt      string
	logs      *testutil.SyncBuffer
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCert(t testing.TB, name string) (tls.Certificate, string) {
	t.Helper()
	c, err := link.SelfSignedCert(newKey(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return c, custody.Pin(c.Leaf)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, net: &linktest.Network{}, logs: &testutil.SyncBuffer{}}
	var err error
	e.b, err = linktest.NewBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.devKey = newKey(t)
	e.srv = &link.Server{
		Backend: e.b,
		Key:     e.devKey,
		Name:    "attune-test",
		Log:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	e.devPin, err = e.srv.Pin()
	if err != nil {
		t.Fatal(err)
	}
	e.serve(deviceAddr)
	e.laptop, e.laptopPin = newCert(t, "laptop")
	e.id, err = age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e.rcpt = e.id.Recipient().String()
	return e
}

// serve runs the device's server at addr until the test ends.
func (e *env) serve(addr string) {
	ln, err := e.net.Listen(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
}

func (e *env) payload() link.LaptopPayload {
	return link.LaptopPayload{
		LaptopCertPin: e.laptopPin,
		Recipients:    []string{e.rcpt},
		CaseRef:       "case-ref-7f3a",
		Now:           time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC),
	}
}

func (e *env) pair(addr, code string) (link.DevicePairing, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return link.Pair(ctx, e.net, addr, code, e.payload())
}

func (e *env) client(cert tls.Certificate, devicePin string) *link.Client {
	e.t.Helper()
	c, err := link.NewClient(e.net, deviceAddr, cert, devicePin)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// paired pairs the laptop without the protocol and returns its client.
func (e *env) paired() *link.Client {
	e.b.SetLaptopPin(e.laptopPin)
	return e.client(e.laptop, e.devPin)
}

// recording stores a finished recording of the given plaintexts.
func (e *env) recording(segments ...[]byte) *storage.Index {
	e.t.Helper()
	rs, err := storage.NewRecipients([]age.Recipient{e.id.Recipient()})
	if err != nil {
		e.t.Fatal(err)
	}
	ix, err := linktest.Record(e.b.Storage(), rs, segments...)
	if err != nil {
		e.t.Fatal(err)
	}
	return ix
}

// raw is an HTTPS client that pins nothing and presents certs, for
// requests the Client would never make.
func (e *env) raw(certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		DialContext:     e.net.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: certs},
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func do(t *testing.T, hc *http.Client, method, path, body string, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+deviceAddr+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func TestPairRightCode(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("042917")
	dp, err := e.pair(deviceAddr, "042 917")
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	// Both sides hold each other's pins.
	if dp.DevicePin != e.devPin {
		t.Errorf("laptop holds device pin %s, want %s", dp.DevicePin, e.devPin)
	}
	if got := e.b.LaptopPin(); got != e.laptopPin {
		t.Errorf("device holds laptop pin %q, want %s", got, e.laptopPin)
	}
	if dp.DeviceID != "0123456789abcdef" {
		t.Errorf("device id %q", dp.DeviceID)
	}
	// The recipients arrived, parsed, with the case reference.
	c := e.b.Case()
	if len(c.Recipients) != 1 || c.Recipients[0] != e.rcpt || c.Parsed.Kind != storage.KindX25519 || len(c.Parsed.List) != 1 || c.Ref != "case-ref-7f3a" {
		t.Errorf("device case = %+v", c)
	}
	// The clock is set and trusted.
	now, trusted := e.b.Wall()
	if !trusted || !dp.ClockSet || now.Sub(e.payload().Now).Abs() > time.Minute {
		t.Errorf("device clock %v trusted=%v clock_set=%v, want ≈ %v", now, trusted, dp.ClockSet, e.payload().Now)
	}
	// The pairing works: the client with the learnt pin is served.
	cl := e.client(e.laptop, dp.DevicePin)
	st, err := cl.Status(context.Background())
	if err != nil {
		t.Fatalf("Status after pairing: %v", err)
	}
	if st.State != "ready" || !st.Clock.Trusted {
		t.Errorf("status %+v", st)
	}
	// The code is never accepted again, even while the backend still
	// shows it.
	e.b.OpenWindow("042917")
	_, err = e.pair(deviceAddr, "042917")
	if err == nil || !strings.Contains(err.Error(), "used already") {
		t.Errorf("second pairing with the same code: %v, want refusal (410)", err)
	}
	if e.b.Pairings() != 1 {
		t.Errorf("%d pairings, want 1", e.b.Pairings())
	}
	// No personal data in the logs.
	logs := e.logs.String()
	for _, secret := range []string{"case-ref-7f3a", e.rcpt, "042917"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "paired") {
		t.Errorf("pairing not logged:\n%s", logs)
	}
}

func TestPairWrongCode(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("111111")
	_, err := e.pair(deviceAddr, "111112")
	if !errors.Is(err, link.ErrWrongCode) {
		t.Fatalf("wrong code: %v, want ErrWrongCode", err)
	}
	if e.b.LaptopPin() != "" || len(e.b.Case().Recipients) != 0 || e.b.Pairings() != 0 {
		t.Fatalf("a wrong code left state: pin %q case %+v", e.b.LaptopPin(), e.b.Case())
	}
	if _, trusted := e.b.Wall(); trusted {
		t.Error("a wrong code set the clock")
	}
	if !strings.Contains(e.logs.String(), "wrong code") {
		t.Error("wrong code not logged")
	}
	// One wrong try does not close the window.
	if _, err := e.pair(deviceAddr, "111111"); err != nil {
		t.Fatalf("right code after one wrong one: %v", err)
	}
}

func TestPairFiveWrongCodesLockTheWindow(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("555555")
	for i := range link.MaxWrongCodes {
		if _, err := e.pair(deviceAddr, "55555"+string(rune('0'+i))); !errors.Is(err, link.ErrWrongCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if e.b.Failed() != 1 {
		t.Fatalf("backend told %d times that pairing failed, want 1", e.b.Failed())
	}
	// The backend closed the window; the right code gets 410.
	_, err := e.pair(deviceAddr, "555555")
	if err == nil || !strings.Contains(err.Error(), "too many wrong codes") {
		t.Fatalf("right code after lockout: %v, want 410", err)
	}
	// Even a backend that kept showing the code would not help.
	e.b.OpenWindow("555555")
	_, err = e.pair(deviceAddr, "555555")
	if err == nil || !strings.Contains(err.Error(), "too many wrong codes") {
		t.Fatalf("right code after lockout, window still shown: %v, want 410", err)
	}
	hc := e.raw()
	if st, _, _ := do(t, hc, "POST", "/pair/start", `{"msg_a":"`+strings.Repeat("A", 64)+`"}`); st != http.StatusGone {
		t.Errorf("start after lockout: %d, want 410", st)
	}
	if e.b.LaptopPin() != "" || e.b.Pairings() != 0 {
		t.Fatal("paired after lockout")
	}
	// A new window (a new code) starts afresh.
	e.b.OpenWindow("777777")
	if _, err := e.pair(deviceAddr, "777777"); err != nil {
		t.Fatalf("new window: %v", err)
	}
}

func TestPairNoWindow(t *testing.T) {
	e := newEnv(t)
	_, err := e.pair(deviceAddr, "123456")
	if err == nil || !strings.Contains(err.Error(), "hold PAIR") {
		t.Fatalf("pair without a window: %v", err)
	}
	hc := e.raw()
	if st, body, _ := do(t, hc, "POST", "/pair/start", `{"msg_a":"`+strings.Repeat("A", 64)+`"}`); st != http.StatusConflict || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("start without window: %d %s, want 409 with an error", st, body)
	}
}

func TestPairStartsCapped(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("246810")
	hc := e.raw()
	// A valid CPace message from the laptop side of a real exchange.
	msgA := startMsg(t, e)
	for i := range link.MaxStarts {
		if st, body, _ := do(t, hc, "POST", "/pair/start", msgA); st != http.StatusOK {
			t.Fatalf("start %d: %d %s", i, st, body)
		}
	}
	if st, _, _ := do(t, hc, "POST", "/pair/start", msgA); st != http.StatusTooManyRequests {
		t.Fatalf("start %d: %d, want 429", link.MaxStarts+1, st)
	}
	if _, err := e.pair(deviceAddr, "246810"); err == nil {
		t.Fatal("paired after the start cap")
	}
}

// startMsg returns a /pair/start body with a well-formed msg_a.
func startMsg(t *testing.T, e *env) string {
	t.Helper()
	// Any 48 bytes whose last 32 encode a ristretto255 element; the
	// canonical encoding of the base point will do.
	base := []byte{0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f, 0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76}
	b, _ := json.Marshal(map[string][]byte{"msg_a": append(make([]byte, 16), base...)})
	return string(b)
}

func TestPairReplacedSession(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("135790")
	hc := e.raw()
	st, body, _ := do(t, hc, "POST", "/pair/start", startMsg(t, e))
	if st != http.StatusOK {
		t.Fatalf("start: %d %s", st, body)
	}
	var sr struct{ Session []byte }
	json.Unmarshal(body, &sr)
	// A second start replaces the first session; finishing the first is a
	// conflict and not a wrong try.
	if st, _, _ := do(t, hc, "POST", "/pair/start", startMsg(t, e)); st != http.StatusOK {
		t.Fatal(st)
	}
	fin, _ := json.Marshal(map[string][]byte{"session": sr.Session, "confirm": make([]byte, 32), "sealed": make([]byte, 40)})
	if st, _, _ := do(t, hc, "POST", "/pair/finish", string(fin)); st != http.StatusConflict {
		t.Fatalf("finish of a replaced session: %d, want 409", st)
	}
	if _, err := e.pair(deviceAddr, "135790"); err != nil {
		t.Fatalf("pairing after a replaced session: %v", err)
	}
}

func TestPairOneByteAtATime(t *testing.T) {
	e := newEnv(t)
	e.net.OneByte = true
	e.b.OpenWindow("314159")
	dp, err := e.pair(deviceAddr, "314159")
	if err != nil {
		t.Fatalf("Pair over one-byte connections: %v", err)
	}
	if dp.DevicePin != e.devPin || e.b.LaptopPin() != e.laptopPin {
		t.Fatal("pins not exchanged")
	}
	if _, err := e.client(e.laptop, dp.DevicePin).Status(context.Background()); err != nil {
		t.Fatalf("Status over one-byte connections: %v", err)
	}
}

func TestPairRefusedByBackend(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("271828")
	e.b.FailPairing(errors.New("recipients: not accepted"))
	_, err := e.pair(deviceAddr, "271828")
	if err == nil || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("pair refused by backend: %v", err)
	}
	if e.b.LaptopPin() != "" {
		t.Fatal("refused pairing left a pin")
	}
	// The code was not consumed: fixing the problem and retrying works.
	e.b.FailPairing(nil)
	if _, err := e.pair(deviceAddr, "271828"); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestPairBadPayloadRefusedLocally(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("161803")
	ctx := context.Background()
	p := e.payload()
	p.Recipients = []string{e.rcpt + "\nage1evil"}
	if _, err := link.Pair(ctx, e.net, deviceAddr, "161803", p); err == nil {
		t.Error("two recipients in one entry accepted")
	}
	p = e.payload()
	hy, _ := age.GenerateHybridIdentity()
	p.Recipients = []string{e.rcpt, hy.Recipient().String()}
	if _, err := link.Pair(ctx, e.net, deviceAddr, "161803", p); err == nil || !strings.Contains(err.Error(), "mixed") {
		t.Errorf("mixed recipient kinds: %v", err)
	}
	if _, err := link.Pair(ctx, e.net, deviceAddr, "16180", e.payload()); err == nil {
		t.Error("five-digit code accepted")
	}
	// Nothing of this reached the device as a wrong try.
	if _, err := e.pair(deviceAddr, "161803"); err != nil {
		t.Fatal(err)
	}
}

// mitm starts a TLS-terminating proxy at addr that relays every request to
// the device; it presents a certificate for key.
func (e *env) mitm(addr string, key ed25519.PrivateKey) {
	e.t.Helper()
	cert, err := link.SelfSignedCert(key, "attune-test")
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := e.net.Listen(addr)
	if err != nil {
		e.t.Fatal(err)
	}
	tr := &http.Transport{
		DialContext:     e.net.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
	}
	hs := &http.Server{Handler: &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(&url.URL{Scheme: "https", Host: deviceAddr}) },
		Transport: tr,
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}))
	}()
	e.t.Cleanup(func() {
		hs.Close()
		tr.CloseIdleConnections()
		<-done
	})
}

func TestPairMachineInTheMiddle(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("999000")
	// The attacker relays everything but cannot present the device's key.
	e.mitm("evil.test:8443", newKey(t))
	_, err := e.pair("evil.test:8443", "999000")
	if err == nil {
		t.Fatal("paired through a machine in the middle")
	}
	if e.b.LaptopPin() != "" || e.b.Pairings() != 0 {
		t.Fatal("device paired through a machine in the middle")
	}
	// Control: the same relay presenting the device's own key (which an
	// attacker does not have) lets the pairing through, so it is the
	// certificate binding that stopped the first attempt.
	e.mitm("relay.test:8443", e.devKey)
	dp, err := e.pair("relay.test:8443", "999000")
	if err != nil {
		t.Fatalf("pairing through a relay with the device's key: %v", err)
	}
	if dp.DevicePin != e.devPin || e.b.LaptopPin() != e.laptopPin {
		t.Fatal("pins not exchanged through the relay")
	}
}

// apiPaths is every API request, with a body where it takes one.
func apiPaths(id string) [][3]string {
	return [][3]string{
		{"GET", "/api/v1/status", ""},
		{"GET", "/api/v1/recordings", ""},
		{"GET", "/api/v1/recordings/" + id, ""},
		{"GET", "/api/v1/recordings/" + id + "/segments/0", ""},
		{"HEAD", "/api/v1/recordings/" + id + "/segments/0", ""},
		{"GET", "/api/v1/recordings/" + id + "/manifest", ""},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[0,1],"manifest":true}`},
		{"PUT", "/api/v1/clock", `{"now":"2027-01-01T00:00:00Z"}`},
		{"PUT", "/api/v1/recipients", `{"recipients":["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],"case_ref":"x"}`},
		{"GET", "/api/v1/nonexistent", ""},
		{"GET", "/", ""},
		{"GET", "/pair/../api/v1/recordings", ""},
	}
}

func TestAPIRefusesStrangers(t *testing.T) {
	e := newEnv(t)
	ix := e.recording([]byte("segment zero"), []byte("segment one"))
	before := snapshot(t, e)
	other, _ := newCert(t, "other laptop")
	check := func(name string, hc *http.Client) {
		for _, p := range apiPaths(ix.ID) {
			st, body, _ := do(t, hc, p[0], p[1], p[2])
			if st != http.StatusForbidden || len(body) != 0 {
				t.Errorf("%s: %s %s = %d %q, want 403 and an empty body", name, p[0], p[1], st, body)
			}
		}
	}
	// Before pairing, nobody is served, not even the future laptop.
	check("unpaired device, laptop key", e.raw(e.laptop))
	e.b.SetLaptopPin(e.laptopPin)
	check("no client certificate", e.raw())
	check("another laptop's key", e.raw(other))
	if after := snapshot(t, e); after != before {
		t.Errorf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
	}
	// The Client says what to do.
	_, err := e.client(other, e.devPin).Recordings(context.Background())
	if !errors.Is(err, link.ErrRefused) || !strings.Contains(err.Error(), "attune pair") {
		t.Errorf("client with another key: %v", err)
	}
	// And the paired laptop is served.
	if _, err := e.client(e.laptop, e.devPin).Recordings(context.Background()); err != nil {
		t.Errorf("paired laptop: %v", err)
	}
}

// snapshot is the device state the API can change: recordings, files,
// clock, recipients.
func snapshot(t *testing.T, e *env) string {
	t.Helper()
	list, err := e.b.Storage().List()
	if err != nil {
		t.Fatal(err)
	}
	_, trusted := e.b.Wall()
	b, _ := json.Marshal(struct {
		List    []*storage.Index
		Trusted bool
		Case    []string
		Ref     string
	}{list, trusted, e.b.Case().Recipients, e.b.Case().Ref})
	return string(b)
}

func TestClientPinsTheDevice(t *testing.T) {
	e := newEnv(t)
	ix := e.recording([]byte("zero"))
	e.b.SetLaptopPin(e.laptopPin)
	_, wrongPin := newCert(t, "impostor")
	c := e.client(e.laptop, wrongPin)
	ctx := context.Background()
	if _, err := c.Status(ctx); !errors.Is(err, link.ErrWrongDevice) || !strings.Contains(err.Error(), "attune pair") {
		t.Errorf("Status with the wrong device pin: %v", err)
	}
	if _, err := c.Ack(ctx, ix.ID, []int{0}, true); !errors.Is(err, link.ErrWrongDevice) {
		t.Errorf("Ack with the wrong device pin: %v", err)
	}
	var buf bytes.Buffer
	if _, err := c.Segment(ctx, ix.ID, 0, 0, &buf); !errors.Is(err, link.ErrWrongDevice) || buf.Len() != 0 {
		t.Errorf("Segment with the wrong device pin: %v (%d bytes)", err, buf.Len())
	}
	// The refused client sent nothing the device acted on.
	now, err := e.b.Storage().Index(ix.ID)
	if err != nil || now.Segments[0].Acked {
		t.Fatalf("segment acknowledged through a refused connection: %v", err)
	}
	// An impostor device (another key at the same address) is refused too.
	ln := &linktest.Network{}
	imp := &env{t: t, net: ln, b: e.b, srv: &link.Server{Backend: e.b, Key: newKey(t)}}
	imp.serve(deviceAddr)
	ic, err := link.NewClient(ln, deviceAddr, e.laptop, e.devPin)
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if _, err := ic.Recordings(ctx); !errors.Is(err, link.ErrWrongDevice) {
		t.Errorf("impostor device: %v", err)
	}
}

func TestSetClockAndRecipients(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	ctx := context.Background()
	want := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	cs, err := c.SetClock(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Trusted || cs.Now.Sub(want).Abs() > time.Minute {
		t.Errorf("clock after SetClock: %+v", cs)
	}
	st, err := c.Status(ctx)
	if err != nil || !st.Clock.Trusted || st.DeviceID == "" || st.Storage.FreeBytes == 0 {
		t.Errorf("status %+v, %v", st, err)
	}
	hy, _ := age.GenerateHybridIdentity()
	if err := c.SetRecipients(ctx, []string{hy.Recipient().String()}, "case-2"); err != nil {
		t.Fatal(err)
	}
	if k := e.b.Case(); k.Parsed.Kind != storage.KindHybrid || k.Ref != "case-2" {
		t.Errorf("case after SetRecipients: kind %q ref %q", k.Parsed.Kind, k.Ref)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	ix := e.recording([]byte("zero"), []byte("one"))
	if err := c.SetRecipients(context.Background(), []string{e.rcpt}, "case-1"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e)
	hc := e.raw(e.laptop)
	id := ix.ID
	big := `{"segments":[` + strings.Repeat("0,", 40<<10) + `0]}`
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/recordings/XYZ", "", 400},
		{"GET", "/api/v1/recordings/" + strings.ToUpper(id), "", 400},
		{"GET", "/api/v1/recordings/" + id + "0", "", 400},
		{"GET", "/api/v1/recordings/0000000000000000", "", 404},
		{"GET", "/api/v1/recordings/" + id + "/segments/01", "", 400},
		{"GET", "/api/v1/recordings/" + id + "/segments/-1", "", 400},
		{"GET", "/api/v1/recordings/" + id + "/segments/+1", "", 400},
		{"GET", "/api/v1/recordings/" + id + "/segments/1e0", "", 400},
		{"GET", "/api/v1/recordings/" + id + "/segments/", "", 404},
		{"GET", "/api/v1/recordings/" + id + "/segments/99999999999", "", 400},
		{"GET", "/api/v1/recordings/" + id + "/segments/2", "", 404},
		{"GET", "/api/v1/recordings/" + id + "/segments/%2e%2e", "", 400},
		{"GET", "/api/v1/recordings/0000000000000000/manifest", "", 404},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[0,2]}`, 404},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[-1]}`, 404},
		{"POST", "/api/v1/recordings/0000000000000000/ack", `{"segments":[0]}`, 404},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[0]`, 400},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[0]} {}`, 400},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":[0],"delete_all":true}`, 400},
		{"POST", "/api/v1/recordings/" + id + "/ack", `{"segments":["0"]}`, 400},
		{"POST", "/api/v1/recordings/" + id + "/ack", big, 413},
		{"POST", "/api/v1/recordings/nothex!!nothex!!/ack", `{"segments":[0]}`, 400},
		{"GET", "/api/v1/recordings/" + id + "/ack", "", 404},
		{"DELETE", "/api/v1/recordings/" + id, "", 404},
		{"PUT", "/api/v1/clock", `{"now":"yesterday"}`, 400},
		{"PUT", "/api/v1/clock", `{"now":"1970-01-01T00:00:10Z"}`, 400},
		{"PUT", "/api/v1/clock", `{}`, 400},
		{"PUT", "/api/v1/recipients", `{"recipients":[]}`, 400},
		{"PUT", "/api/v1/recipients", `{"recipients":["age1nope"]}`, 400},
		{"PUT", "/api/v1/recipients", `{"recipients":["# comment"]}`, 400},
		{"PUT", "/api/v1/recipients", `{"recipients":["` + e.rcpt + `"],"case_ref":"a\u0007b"}`, 400},
		{"PUT", "/api/v1/recipients", `{"recipients":["` + e.rcpt + ` ` + e.rcpt + `"]}`, 400},
	}
	for _, tc := range cases {
		st, body, _ := do(t, hc, tc.method, tc.path, tc.body)
		if st != tc.want {
			t.Errorf("%s %s %.60q: %d %s, want %d", tc.method, tc.path, tc.body, st, body, tc.want)
			continue
		}
		var ae struct{ Error string }
		if err := json.Unmarshal(body, &ae); err != nil || ae.Error == "" {
			t.Errorf("%s %s: body %q is not {\"error\": ...}", tc.method, tc.path, body)
		}
	}
	if after := snapshot(t, e); after != before {
		t.Errorf("bad requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestPairManyPostQuantumRecipients(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("202020")
	p := e.payload()
	p.Recipients = nil
	for range link.MaxRecipients {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			t.Fatal(err)
		}
		p.Recipients = append(p.Recipients, id.Recipient().String())
	}
	if _, err := link.Pair(context.Background(), e.net, deviceAddr, "202020", p); err != nil {
		t.Fatalf("pairing with %d post-quantum recipients: %v", link.MaxRecipients, err)
	}
	if c := e.b.Case(); len(c.Parsed.List) != link.MaxRecipients || c.Parsed.Kind != storage.KindHybrid {
		t.Fatalf("case %d recipients of kind %s", len(c.Parsed.List), c.Parsed.Kind)
	}
	p.Recipients = append(p.Recipients, p.Recipients[0])
	e.b.OpenWindow("303030")
	if _, err := link.Pair(context.Background(), e.net, deviceAddr, "303030", p); err == nil {
		t.Fatal("more than MaxRecipients accepted")
	}
}

func TestPairWithAWrongLaptopClock(t *testing.T) {
	e := newEnv(t)
	e.b.OpenWindow("404040")
	p := e.payload()
	p.Now = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	dp, err := link.Pair(context.Background(), e.net, deviceAddr, "404040", p)
	if err != nil {
		t.Fatalf("pairing with a wrong laptop clock: %v", err)
	}
	if dp.ClockSet {
		t.Error("device says it took a 2019 clock")
	}
	if _, trusted := e.b.Wall(); trusted {
		t.Error("device trusts a 2019 clock")
	}
	if e.b.LaptopPin() != e.laptopPin {
		t.Error("pairing did not stand")
	}
}

// TestLifecycle: the end-of-case endpoints every backend serves — the audit
// chain after a sequence number, a reset refused while footage is unsynced
// and done when forced, and the certificates it leaves.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.paired()
	ctx := t.Context()
	e.b.SetAudit([]byte("{\"seq\":1}\n{\"seq\":2}\n"))
	if raw, err := c.Audit(ctx, 1); err != nil || string(raw) != "{\"seq\":2}\n" {
		t.Fatalf("audit after 1: %q, %v", raw, err)
	}
	e.recording([]byte("unsynced"))
	if _, err := c.Reset(ctx, false); !errors.Is(err, link.ErrUnsynced) {
		t.Fatalf("reset with unsynced footage: %v", err)
	}
	if list, _ := e.b.Storage().List(); len(list) != 1 {
		t.Fatal("a refused reset changed the device")
	}
	cert, err := c.Reset(ctx, true)
	if err != nil || len(cert) == 0 {
		t.Fatalf("forced reset: %q, %v", cert, err)
	}
	if list, _ := e.b.Storage().List(); len(list) != 0 {
		t.Error("recordings survived the reset")
	}
	certs, err := e.b.Certificates()
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0], cert) {
		t.Errorf("certificates after the reset: %q, %v", certs, err)
	}
}
