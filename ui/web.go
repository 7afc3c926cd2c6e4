package ui

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/device"
)

//go:embed panel/index.html
var panelFS embed.FS

// WebPanel serves the simulated board's front panel: a page that draws the
// device from what ui actually drove into the simulated LED and display,
// with buttons that drive the simulated pins, and a JSON API for scripts
// and tests. Presses go through the same pins, debounce and chord logic as
// on hardware.
type WebPanel struct {
	Sim    SimBoard
	Panel  *Panel
	Status func() device.Status
	Clock  clockwork.Clock
	Log    *slog.Logger

	mu sync.Mutex // one scripted press at a time
}

// SimBoard is what WebPanel needs from the simulated board (a *board.Sim):
// its buttons pressed from code, what its LED and display show, and its
// battery's charge.
type SimBoard interface {
	// Press presses (down) or releases the button named rec, mark or pair.
	Press(button string, down bool) error
	// LED returns the colours lit.
	LED() (r, g, b bool)
	// Digits returns the digits shown (canonical encoding) and the colon.
	Digits() ([4]byte, bool)
	// SetBattery sets the charge in percent.
	SetBattery(percent int)
	// Changed returns a channel closed at the next change of the LED, the
	// display or the battery.
	Changed() <-chan struct{}
}

// MaxHold is the longest press the API accepts.
const MaxHold = 60 * time.Second

// PanelState is the JSON of GET /api/panel and of each event on
// /api/panel/events.
type PanelState struct {
	State string `json:"state"`
	LED   struct {
		Color string `json:"color"`
		Blink bool   `json:"blink"`
	} `json:"led"`
	Display string `json:"display"`
	Code    string `json:"code,omitempty"`
	// What is physically lit this instant (the page draws these).
	Lit struct {
		R bool `json:"r"`
		G bool `json:"g"`
		B bool `json:"b"`
	} `json:"lit"`
	Segments []int `json:"segments"`
	Colon    bool  `json:"colon"`
}

func (w *WebPanel) state() PanelState {
	var ps PanelState
	st := w.Status()
	ind := w.Panel.Current()
	ps.State = string(st.State)
	ps.LED.Color = string(ind.LED)
	ps.LED.Blink = ind.Blink > 0
	ps.Display = ind.Text
	if st.State == device.StatePairing {
		ps.Code = st.Code
	}
	ps.Lit.R, ps.Lit.G, ps.Lit.B = w.Sim.LED()
	digits, colon := w.Sim.Digits()
	for _, d := range digits {
		ps.Segments = append(ps.Segments, int(d))
	}
	ps.Colon = colon
	return ps
}

// Handler returns the panel's routes for a server listening on addr
// (host:port), guarded against other sites (sameSite).
func (w *WebPanel) Handler(addr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := panelFS.ReadFile("panel/index.html")
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Write(b)
	})
	mux.HandleFunc("GET /api/panel", func(rw http.ResponseWriter, r *http.Request) {
		writeJSON(rw, http.StatusOK, w.state())
	})
	mux.HandleFunc("GET /api/panel/events", w.events)
	mux.HandleFunc("POST /api/panel/press", w.press)
	mux.HandleFunc("POST /api/panel/button", w.button)
	mux.HandleFunc("POST /api/panel/battery", w.battery)
	return sameSite(addr, mux)
}

// sameSite lets through only requests meant for the panel at addr, so that a
// page on another site cannot drive it (a form POSTs text/plain across
// sites without asking) and a DNS name rebound to this address cannot read
// it (the pairing code is in /api/panel):
//
//   - Host must name this server: addr itself, or localhost, 127.0.0.1 or
//     [::1] with addr's port (any IP literal with the port when addr's host
//     is unspecified, 0.0.0.0 or ::); otherwise 403. A rebound name is not
//     an IP literal, so it never matches.
//   - Origin, when the browser sends one, must be http:// and that Host;
//     otherwise 403.
//   - A POST must be Content-Type: application/json, which no page on
//     another site can send without the browser asking this server first
//     (CORS preflight, which it does not answer); otherwise 415.
func sameSite(addr string, next http.Handler) http.Handler {
	lhost, port, err := net.SplitHostPort(addr)
	allowed := map[string]bool{addr: true}
	anyIP := false
	if err == nil {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			allowed[net.JoinHostPort(h, port)] = true
		}
		ip := net.ParseIP(lhost)
		anyIP = lhost == "" || ip != nil && ip.IsUnspecified()
	}
	hostOK := func(host string) bool {
		if allowed[strings.ToLower(host)] {
			return true
		}
		h, p, err := net.SplitHostPort(host)
		return anyIP && err == nil && p == port && net.ParseIP(h) != nil
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !hostOK(r.Host) {
			writeJSON(rw, http.StatusForbidden, map[string]string{"error": "forbidden: Host must be this panel's address (" + addr + ")"})
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host {
			writeJSON(rw, http.StatusForbidden, map[string]string{"error": "forbidden: requests from other sites are refused"})
			return
		}
		if r.Method == http.MethodPost {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeJSON(rw, http.StatusUnsupportedMediaType, map[string]string{"error": "send the body as Content-Type: application/json"})
				return
			}
		}
		next.ServeHTTP(rw, r)
	})
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

func badRequest(rw http.ResponseWriter, format string, args ...any) {
	writeJSON(rw, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// pressRequest is the body of POST /api/panel/press: one button or a chord.
type pressRequest struct {
	Button  string   `json:"button"`
	Buttons []string `json:"buttons"`
	MS      *int     `json:"ms"`
}

var buttonNames = []string{"rec", "mark", "pair"}

// parsePress validates a press request; nothing is pressed unless it is
// entirely valid.
func parsePress(body []byte) ([]string, time.Duration, error) {
	var req pressRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, 0, fmt.Errorf(`body must be {"button": "rec", "ms": 120} or {"buttons": ["rec", "pair"], "ms": 10500}: %v`, err)
	}
	buttons := req.Buttons
	if req.Button != "" {
		if len(buttons) > 0 {
			return nil, 0, errors.New(`give "button" or "buttons", not both`)
		}
		buttons = []string{req.Button}
	}
	if len(buttons) == 0 {
		return nil, 0, errors.New(`no button: give "button": "rec", "mark" or "pair"`)
	}
	seen := map[string]bool{}
	for _, b := range buttons {
		if !slices.Contains(buttonNames, b) {
			return nil, 0, fmt.Errorf("unknown button %q: use rec, mark or pair", b)
		}
		if seen[b] {
			return nil, 0, fmt.Errorf("button %q given twice", b)
		}
		seen[b] = true
	}
	hold := 120 * time.Millisecond
	if req.MS != nil {
		if *req.MS < 0 || time.Duration(*req.MS)*time.Millisecond > MaxHold {
			return nil, 0, fmt.Errorf("ms must be between 0 and %d", MaxHold.Milliseconds())
		}
		hold = time.Duration(*req.MS) * time.Millisecond
	}
	return buttons, hold, nil
}

func readBody(rw http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 4096))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(rw, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
		} else {
			badRequest(rw, "read body: %v", err)
		}
		return nil, false
	}
	return b, true
}

// press: presses the buttons, holds them, releases them (in reverse) and
// answers after the release with the panel state.
func (w *WebPanel) press(rw http.ResponseWriter, r *http.Request) {
	body, ok := readBody(rw, r)
	if !ok {
		return
	}
	buttons, hold, err := parsePress(body)
	if err != nil {
		badRequest(rw, "%v", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range buttons {
		if err := w.Sim.Press(b, true); err != nil {
			badRequest(rw, "%v", err)
			return
		}
	}
	select {
	case <-w.Clock.After(hold):
	case <-r.Context().Done():
	}
	for i := len(buttons) - 1; i >= 0; i-- {
		w.Sim.Press(buttons[i], false)
	}
	writeJSON(rw, http.StatusOK, w.state())
}

// button: the page's pointer down/up, {"button": "rec", "down": true}.
func (w *WebPanel) button(rw http.ResponseWriter, r *http.Request) {
	body, ok := readBody(rw, r)
	if !ok {
		return
	}
	var req struct {
		Button string `json:"button"`
		Down   *bool  `json:"down"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Down == nil || !slices.Contains(buttonNames, req.Button) {
		badRequest(rw, `body must be {"button": "rec"|"mark"|"pair", "down": true|false}`)
		return
	}
	if err := w.Sim.Press(req.Button, *req.Down); err != nil {
		badRequest(rw, "%v", err)
		return
	}
	writeJSON(rw, http.StatusOK, w.state())
}

// events streams the panel state as server-sent events on every change of
// the simulated LED or display, and at least twice a second.
func (w *WebPanel) events(rw http.ResponseWriter, r *http.Request) {
	fl, ok := rw.(http.Flusher)
	if !ok {
		http.Error(rw, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-store")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := w.Sim.Changed()
		b, _ := json.Marshal(w.state())
		if _, err := fmt.Fprintf(rw, "data: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// Serve serves the panel on ln until ctx is done.
func (w *WebPanel) Serve(ctx context.Context, ln net.Listener) error {
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			w.Log.Warn("simulated panel reachable from the network: it shows pairing codes; use 127.0.0.1", "addr", ln.Addr().String())
		}
	}
	srv := &http.Server{Handler: w.Handler(ln.Addr().String()), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// battery sets the simulated battery's charge: {"percent": 4}.
func (w *WebPanel) battery(rw http.ResponseWriter, r *http.Request) {
	body, ok := readBody(rw, r)
	if !ok {
		return
	}
	var req struct {
		Percent *int `json:"percent"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Percent == nil || *req.Percent < 0 || *req.Percent > 100 {
		badRequest(rw, `body must be {"percent": 0 to 100}`)
		return
	}
	w.Sim.SetBattery(*req.Percent)
	writeJSON(rw, http.StatusOK, w.state())
}
