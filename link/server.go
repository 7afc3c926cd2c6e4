package link

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// Backend is the device side of the link: what the daemon (cmd/attuned)
// provides so the server can pair and serve. Its methods are called from
// the server's request goroutines, concurrently; each must be safe for
// that. The backend persists the pairing (laptop pin, recipients, case
// reference); the link package keeps no state across restarts.
type Backend interface {
	// PairingCode returns the one-time code on the display and whether a
	// pairing window is open. A code identifies its window: the server
	// resets its attempt counters when the code changes, so a code must
	// never be shown twice.
	PairingCode() (code string, open bool)
	// PairingFailed is called once when MaxWrongCodes wrong codes have
	// been tried in the current window. The backend must close the window
	// at once (the display leaves the pairing state); the server already
	// refuses every further attempt in it.
	PairingFailed()
	// Paired makes a successful pairing durable and active before it
	// returns: LaptopPin returns p.LaptopPin from now on, recordings
	// started from now on are sealed to p.Case.Parsed, and the window is
	// closed. An error fails the pairing (the laptop sees 400 and the
	// error text, so it must hold no personal data) and must leave the
	// previous pairing, if any, in force. After Paired succeeds the server
	// calls SetClock(p.Now); a refused time does not undo the pairing.
	Paired(p Pairing) error
	// LaptopPin is the paired laptop's certificate pin (see custody.Pin), or ""
	// while the device is not paired. Only a client presenting a
	// certificate with this pin may use the API.
	LaptopPin() string
	// Status describes the device for GET /api/v1/status. It must not
	// include the pairing code.
	Status() Status
	// SetClock sets the wall clock from the paired laptop and trusts it
	// from then on (system.Clock.Set). An error means the time was refused
	// (400).
	SetClock(t time.Time) error
	// SetRecipients makes c the case new recordings are sealed to, durably
	// (PUT /api/v1/recipients). The server has validated c. An error must
	// leave the previous recipients in force. A zero Case (no recipients,
	// DELETE /api/v1/recipients) means the laptop closed the case: the
	// device stays paired but records nothing until a case is set.
	SetRecipients(c Case) error
	// Store is the segment store the API lists, serves and acknowledges.
	Store() Store
	// Audit returns the device's audit chain records after sequence
	// number after, as the exact JSON lines the device wrote
	// (GET /api/v1/audit).
	Audit(after uint64) ([]byte, error)
	// Reset erases every recording, the pairing and the device key and
	// returns the erasure certificate signed by the old key
	// (POST /api/v1/reset). Without force it refuses with ErrUnsynced while
	// footage that was never acknowledged is on the device, changing
	// nothing.
	Reset(force bool) ([]byte, error)
	// Certificates are erasure certificates of resets confirmed on the
	// device's buttons, waiting for the next paired laptop
	// (GET /api/v1/certificates).
	Certificates() ([][]byte, error)
	// SegmentSent is called once a segment has been sent to the paired
	// laptop in full: the bytes 0 to the end, in one answer or in ranges
	// that join up (a resumed download). A refused request, a 404 or a
	// range that leaves a gap is not a transfer. The server calls it once
	// per segment it finishes sending, from the request's goroutine.
	SegmentSent(id string, n int)
}

// ErrOtherCase is the refusal of an acknowledgement for a recording sealed
// for a case other than the paired laptop's (409): only the laptop whose
// case key opens a recording can have verified it, so no other may delete
// it.
var ErrOtherCase = errors.New("the recording belongs to a case this laptop did not pair or start; nothing was deleted")

// Store is the part of *storage.Store the API uses. The backend's Ack
// must refuse, changing nothing, with an error wrapping ErrOtherCase when
// the recording's case reference (storage.Index.CaseRef) is not one of the
// paired laptop's cases.
type Store interface {
	List() ([]*storage.Index, error)
	Index(id string) (*storage.Index, error)
	SegmentPath(id string, n int) string
	ManifestPath(id string) string
	Ack(id string, segments []int, manifest bool) (*storage.Index, error)
}

var _ Store = (*storage.Store)(nil)

// Status is the answer to GET /api/v1/status.
type Status struct {
	// State is the daemon's state (device.State): "ready", "recording", …
	State    string `json:"state"`
	DeviceID string `json:"device_id"`
	// Case is the number of the case new recordings are sealed to
	// (custody.CaseNumber), "" with no case.
	Case string `json:"case,omitempty"`
	// Battery is the charge in percent from the device's fuel gauge; nil
	// (left out) when it has none, or is a device before the field.
	Battery *int          `json:"battery,omitempty"`
	Version string        `json:"version"`
	Storage StorageStatus `json:"storage"`
	Clock   ClockStatus   `json:"clock"`
}

// StorageStatus is the device's free space.
type StorageStatus struct {
	FreeBytes   uint64 `json:"free_bytes"`
	MinutesLeft int    `json:"minutes_left"`
}

// ClockStatus is the device's wall clock and whether it is trusted
// (system.Clock.Wall).
type ClockStatus struct {
	Now     time.Time `json:"now"`
	Trusted bool      `json:"trusted"`
}

// Server is the device's HTTPS server: pairing under /pair/ and the API
// under /api/v1/, for the paired laptop only.
type Server struct {
	Backend Backend
	// Key is the device's long-term key; its certificate is derived from
	// it (SelfSignedCert) and its pin is what the laptop pins.
	Key ed25519.PrivateKey
	// Name is the certificate's common name; "attune" if empty.
	Name string
	// Log receives pairing events and internal errors; nil discards.
	Log *slog.Logger
	// MaxPending caps the connections not yet known to be the paired
	// laptop's (handshaking, pairing, or refused with 403): one more is
	// closed as soon as it is accepted. 0 means DefaultMaxPending.
	MaxPending int
	// HandshakeTimeout bounds the TLS handshake and the wait for a
	// request's headers. 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	once    sync.Once
	initErr error
	cert    tls.Certificate
	pin     string // hex
	pinRaw  []byte
	handler http.Handler

	pair pairState
	sent sentSegments
}

func (s *Server) init() error {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Backend == nil {
			s.initErr = errors.New("link server: no backend")
			return
		}
		if len(s.Key) != ed25519.PrivateKeySize {
			s.initErr = errors.New("link server: no Ed25519 key")
			return
		}
		name := s.Name
		if name == "" {
			name = "attune"
		}
		s.cert, s.initErr = SelfSignedCert(s.Key, name)
		if s.initErr != nil {
			return
		}
		s.pin = custody.Pin(s.cert.Leaf)
		s.pinRaw, _ = pinBytes(s.pin)
		s.handler = s.routes()
	})
	return s.initErr
}

// Pin is the pin of the device's certificate, as the laptop pins it.
func (s *Server) Pin() (string, error) {
	if err := s.init(); err != nil {
		return "", err
	}
	return s.pin, nil
}

// Certificate is the device's certificate (for `curl --cacert`).
func (s *Server) Certificate() (tls.Certificate, error) {
	if err := s.init(); err != nil {
		return tls.Certificate{}, err
	}
	return s.cert, nil
}

// TLSConfig is the server's TLS configuration: TLS 1.3 only, the device's
// certificate, and a request (not a demand: pairing comes before the
// laptop is known) for the client's certificate, checked per request.
func (s *Server) TLSConfig() (*tls.Config, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.cert},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// Handler serves requests that arrived over TLS (r.TLS set). It is what
// Serve runs; tests may call it directly.
func (s *Server) Handler() http.Handler {
	if err := s.init(); err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusInternalServerError, "device misconfigured")
		})
	}
	return s.handler
}

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully (in-flight requests get a few seconds) and returns nil. It
// returns early with an error if ln fails. Every goroutine it starts has
// ended when it returns; Serve closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg, err := s.TLSConfig()
	if err != nil {
		ln.Close()
		return err
	}
	handshake := cmp.Or(s.HandshakeTimeout, DefaultHandshakeTimeout)
	hs := &http.Server{
		Handler: s.handler,
		// net/http bounds the TLS handshake by the shortest of these
		// timeouts: ReadHeaderTimeout.
		ReadHeaderTimeout: handshake,
		ReadTimeout:       time.Minute,
		WriteTimeout:      10 * time.Minute, // a slow link may take a while per segment
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return withGate(withCork(ctx, c), c)
		},
	}
	gate := newGate(ln, cmp.Or(s.MaxPending, DefaultMaxPending))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(corkListener{gate}, cfg)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("link server: %v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-errc
	if n := gate.refused.Load(); n > 0 {
		s.Log.Info("link server: connections refused over the cap of unauthenticated ones", "count", n)
	}
	return nil
}

// routes builds the handler: pairing open to anyone while a window is open,
// everything else for the paired laptop's key only.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", s.handleStatus)
	api.HandleFunc("GET /api/v1/recordings", s.handleList)
	api.HandleFunc("GET /api/v1/recordings/{id}", s.handleRecording)
	api.HandleFunc("GET /api/v1/recordings/{id}/segments/{n}", s.handleSegment)
	api.HandleFunc("GET /api/v1/recordings/{id}/manifest", s.handleManifest)
	api.HandleFunc("POST /api/v1/recordings/{id}/ack", s.handleAck)
	api.HandleFunc("PUT /api/v1/clock", s.handleClock)
	api.HandleFunc("PUT /api/v1/recipients", s.handleRecipients)
	api.HandleFunc("DELETE /api/v1/recipients", s.handleClearRecipients)
	s.lifecycleRoutes(api)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint or method")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "/pair/start", "/pair/finish":
			if r.Method != http.MethodPost {
				h.Set("Allow", http.MethodPost)
				writeError(w, http.StatusMethodNotAllowed, "use POST")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if r.URL.Path == "/pair/start" {
				s.handlePairStart(w, r)
			} else {
				s.handlePairFinish(w, r)
			}
			return
		}
		if !s.authorized(r) {
			// Not even an error message: an unpaired peer learns nothing,
			// and its connection closes (it holds a slot of the gate).
			s.Log.Debug("api: refused a client without the paired laptop's key")
			h.Set("Connection", "close")
			w.WriteHeader(http.StatusForbidden)
			return
		}
		passGate(r.Context())
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		api.ServeHTTP(w, r)
	})
}

// authorized reports whether the request's client certificate is the
// paired laptop's.
func (s *Server) authorized(r *http.Request) bool {
	want := s.Backend.LaptopPin()
	if want == "" || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	got := custody.Pin(r.TLS.PeerCertificates[0])
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// apiError is the body of every 4xx and 5xx answer with a body.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// badBody answers a request body that did not parse.
func badBody(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func (s *Server) internal(w http.ResponseWriter, op string, err error) {
	s.Log.Error("api: "+op, "err", err)
	writeError(w, http.StatusInternalServerError, op+" failed on the device; see its log")
}

func isNotFound(err error) bool {
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Backend.Status())
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	list, err := s.Backend.Store().List()
	if err != nil {
		s.internal(w, "list recordings", err)
		return
	}
	if list == nil {
		list = []*storage.Index{}
	}
	writeJSON(w, http.StatusOK, list)
}

// recording validates the {id} of r and loads its index; on failure it has
// answered already.
func (s *Server) recording(w http.ResponseWriter, r *http.Request) (*storage.Index, bool) {
	id := r.PathValue("id")
	if !custody.ValidID(id) {
		writeError(w, http.StatusBadRequest, "bad recording id: 16 lowercase hex digits expected")
		return nil, false
	}
	ix, err := s.Backend.Store().Index(id)
	if isNotFound(err) {
		writeError(w, http.StatusNotFound, "no such recording")
		return nil, false
	}
	if err != nil {
		s.internal(w, "read index", err)
		return nil, false
	}
	return ix, true
}

func (s *Server) handleRecording(w http.ResponseWriter, r *http.Request) {
	if ix, ok := s.recording(w, r); ok {
		writeJSON(w, http.StatusOK, ix)
	}
}

// parseSegmentNumber accepts a decimal segment number without sign,
// leading zeros or anything else.
func parseSegmentNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func (s *Server) handleSegment(w http.ResponseWriter, r *http.Request) {
	n, ok := parseSegmentNumber(r.PathValue("n"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad segment number: a decimal number expected")
		return
	}
	ix, ok := s.recording(w, r)
	if !ok {
		return
	}
	if n >= len(ix.Segments) {
		writeError(w, http.StatusNotFound, "no such segment")
		return
	}
	sent := s.serveFile(w, r, s.Backend.Store().SegmentPath(ix.ID, n), ix.Segments[n])
	if sent.n > 0 && s.sent.add(ix.ID, n, sent.first, sent.n, ix.Segments[n].Size) {
		s.Backend.SegmentSent(ix.ID, n)
	}
}

func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request) {
	ix, ok := s.recording(w, r)
	if !ok {
		return
	}
	if ix.Manifest == nil {
		writeError(w, http.StatusNotFound, "no manifest")
		return
	}
	s.serveFile(w, r, s.Backend.Store().ManifestPath(ix.ID), *ix.Manifest)
}

// sentSpan is what an answer carried of a file: n bytes from first.
type sentSpan struct{ first, n int64 }

// serveFile serves a sealed file with Range support; its ETag is the
// SHA-256 of its ciphertext from the index. It returns the bytes of the
// file the answer carried (none for an error, a HEAD, a 304 or several
// ranges at once).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, path string, fi storage.FileInfo) sentSpan {
	if fi.Acked {
		writeError(w, http.StatusNotFound, "already acknowledged and deleted")
		return sentSpan{}
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, "file gone (acknowledged or erased)")
		return sentSpan{}
	}
	if err != nil {
		s.internal(w, "open file", err)
		return sentSpan{}
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+fi.SHA256+`"`)
	if r.Header.Get("Range") == "" && r.Header.Get("If-Range") == "" && r.Header.Get("If-None-Match") == "" && r.Header.Get("If-Match") == "" {
		st, err := f.Stat()
		if err != nil {
			s.internal(w, "stat file", err)
			return sentSpan{}
		}
		return sentSpan{0, sendWhole(w, r, f, st.Size())}
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, f)
	switch {
	case r.Method == http.MethodHead:
		return sentSpan{}
	case cw.code == http.StatusOK:
		return sentSpan{0, cw.n}
	case cw.code == http.StatusPartialContent:
		first, _, _, err := parseContentRange(h.Get("Content-Range"))
		if err != nil { // several ranges (multipart): not counted
			return sentSpan{}
		}
		return sentSpan{first, cw.n}
	}
	return sentSpan{}
}

// countingWriter counts the body bytes written and keeps the status.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// sentSegments tracks, per segment, how much of it has been sent from its
// first byte on, so that a download resumed with a range counts once it
// reaches the end.
type sentSegments struct {
	mu   sync.Mutex
	upto map[string]int64
}

// add notes that n bytes from first of segment (id, n) were sent and
// reports whether that completed the segment, the first time it does.
func (t *sentSegments) add(id string, seg int, first, n, size int64) bool {
	key := id + "/" + strconv.Itoa(seg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.upto == nil {
		t.upto = map[string]int64{}
	}
	have := t.upto[key]
	if have < 0 {
		return false // completed before
	}
	if first > have {
		return false // a gap: not joined up
	}
	have = max(have, first+n)
	if have < size {
		t.upto[key] = have
		return false
	}
	t.upto[key] = -1
	return true
}

// ackRequest is the body of POST /api/v1/recordings/{id}/ack.
type ackRequest struct {
	Segments []int `json:"segments"`
	Manifest bool  `json:"manifest"`
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !custody.ValidID(id) {
		writeError(w, http.StatusBadRequest, "bad recording id: 16 lowercase hex digits expected")
		return
	}
	var req ackRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		badBody(w, err)
		return
	}
	ix, err := s.Backend.Store().Ack(id, req.Segments, req.Manifest)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if errors.Is(err, ErrOtherCase) {
		s.Log.Warn("acknowledgement refused: the recording belongs to another case", "recording", id)
		writeError(w, http.StatusConflict, ErrOtherCase.Error())
		return
	}
	if err != nil {
		s.internal(w, "acknowledge", err)
		return
	}
	s.Log.Info("acknowledged", "recording", id, "segments", len(req.Segments), "manifest", req.Manifest)
	writeJSON(w, http.StatusOK, ix)
}

// clockRequest is the body of PUT /api/v1/clock.
type clockRequest struct {
	Now string `json:"now"`
}

func parseClockRequest(r io.Reader) (time.Time, error) {
	var req clockRequest
	if err := decodeJSON(r, &req); err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, req.Now)
	if err != nil {
		return time.Time{}, errors.New("now must be an RFC 3339 time, e.g. 2026-03-01T10:00:00Z")
	}
	return t, nil
}

func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	t, err := parseClockRequest(r.Body)
	if err != nil {
		badBody(w, err)
		return
	}
	if err := s.Backend.SetClock(t); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.Backend.Status().Clock)
}

// recipientsRequest is the body of PUT /api/v1/recipients.
type recipientsRequest struct {
	Recipients []string `json:"recipients"`
	CaseRef    string   `json:"case_ref"`
}

func parseRecipientsRequest(r io.Reader) (Case, error) {
	var req recipientsRequest
	if err := decodeJSON(r, &req); err != nil {
		return Case{}, err
	}
	return NewCase(req.Recipients, req.CaseRef)
}

func (s *Server) handleRecipients(w http.ResponseWriter, r *http.Request) {
	c, err := parseRecipientsRequest(r.Body)
	if err != nil {
		badBody(w, err)
		return
	}
	if err := s.Backend.SetRecipients(c); err != nil {
		s.internal(w, "set recipients", err)
		return
	}
	s.Log.Info("recipients replaced", "kind", c.Parsed.Kind, "count", len(c.Recipients))
	writeJSON(w, http.StatusOK, struct {
		RecipientKind string `json:"recipient_kind"`
		Count         int    `json:"count"`
	}{c.Parsed.Kind, len(c.Recipients)})
}

func (s *Server) handleClearRecipients(w http.ResponseWriter, r *http.Request) {
	if err := s.Backend.SetRecipients(Case{}); err != nil {
		s.internal(w, "clear recipients", err)
		return
	}
	s.Log.Info("recipients cleared: no case")
	writeJSON(w, http.StatusOK, struct {
		Count int `json:"count"`
	}{0})
}
