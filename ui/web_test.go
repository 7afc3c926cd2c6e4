package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"attune.dev/attune/board/hw/hwtest"
	"attune.dev/attune/device"
	"attune.dev/attune/ui"
	"github.com/jonboulle/clockwork"
)

// simBoard is a SimBoard that records presses and battery changes.
type simBoard struct {
	mu      sync.Mutex
	presses []string
	battery int
}

func (s *simBoard) Press(b string, down bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presses = append(s.presses, b)
	return nil
}
func (s *simBoard) LED() (r, g, b bool)      { return false, true, false }
func (s *simBoard) Digits() ([4]byte, bool)  { return [4]byte{}, false }
func (s *simBoard) Changed() <-chan struct{} { return make(chan struct{}) }
func (s *simBoard) SetBattery(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.battery = p
}

func (s *simBoard) touched() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.presses) > 0 || s.battery != 0
}

// TestWebPanelSameSite: the panel's API refuses what a page on another
// site can send (a text/plain POST, a foreign Origin) and what a DNS name
// rebound to the panel's address asks (a foreign Host), and takes what
// its own page and scripts send.
func TestWebPanelSameSite(t *testing.T) {
	const addr = "127.0.0.1:8080"
	fc := clockwork.NewFakeClockAt(t0)
	for _, tc := range []struct {
		name, method, path, host, origin, ctype, body string
		want                                          int
	}{
		{"script reads", "GET", "/api/panel", addr, "", "", "", 200},
		{"localhost reads", "GET", "/api/panel", "localhost:8080", "", "", "", 200},
		{"page posts", "POST", "/api/panel/battery", addr, "http://" + addr, "application/json", `{"percent":40}`, 200},
		{"curl posts", "POST", "/api/panel/battery", addr, "", "application/json; charset=utf-8", `{"percent":40}`, 200},
		{"ipv6 loopback", "POST", "/api/panel/battery", "[::1]:8080", "http://[::1]:8080", "application/json", `{"percent":40}`, 200},

		{"text/plain post", "POST", "/api/panel/press", addr, "", "text/plain", `{"buttons":["rec","pair"],"ms":10500}`, 415},
		{"form post", "POST", "/api/panel/battery", addr, "", "application/x-www-form-urlencoded", `{"percent":40}`, 415},
		{"no content type", "POST", "/api/panel/battery", addr, "", "", `{"percent":40}`, 415},
		{"cross-site json", "POST", "/api/panel/battery", addr, "http://evil.example", "application/json", `{"percent":40}`, 403},
		{"cross-site text", "POST", "/api/panel/press", addr, "http://evil.example", "text/plain", `{"button":"rec"}`, 403},
		{"null origin", "POST", "/api/panel/battery", addr, "null", "application/json", `{"percent":40}`, 403},
		{"other port origin", "GET", "/api/panel", addr, "http://127.0.0.1:9999", "", "", 403},
		{"rebound name reads", "GET", "/api/panel", "evil.example:8080", "", "", "", 403},
		{"rebound name, page", "GET", "/", "evil.example:8080", "", "", "", 403},
		{"rebound name events", "GET", "/api/panel/events", "evil.example:8080", "", "", "", 403},
		{"other port", "GET", "/api/panel", "127.0.0.1:9999", "", "", "", 403},
		{"other ip", "GET", "/api/panel", "192.168.1.5:8080", "", "", "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := &simBoard{}
			p := ui.NewPanel(fc, &hwtest.LED{}, &hwtest.Display{}, nil)
			w := &ui.WebPanel{Sim: sim, Panel: p, Clock: fc,
				Status: func() device.Status { return device.Status{State: device.StatePairing, Code: "123456"} }}
			h := w.Handler(addr)
			req := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, strings.NewReader(tc.body))
			req.Host = tc.host
			// A stream (events) answered instead of refused ends at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			req = req.WithContext(ctx)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%s %s Host %s Origin %q type %q: %d %s, want %d", tc.method, tc.path, tc.host, tc.origin, tc.ctype, rec.Code, rec.Body, tc.want)
			}
			if tc.want != http.StatusOK {
				if sim.touched() {
					t.Errorf("refused request reached the board: %+v", sim)
				}
				if strings.Contains(rec.Body.String(), "123456") {
					t.Errorf("refused request got the pairing code: %s", rec.Body)
				}
			} else if tc.path == "/api/panel" && !strings.Contains(rec.Body.String(), "123456") {
				t.Errorf("the panel's own read lacks the code: %s", rec.Body)
			}
		})
	}

	// Listening on every address (warned about): any IP literal with the
	// port, never a name.
	w := &ui.WebPanel{Sim: &simBoard{}, Panel: ui.NewPanel(fc, &hwtest.LED{}, &hwtest.Display{}, nil), Clock: fc,
		Status: func() device.Status { return device.Status{State: device.StateReady} }}
	h := w.Handler("0.0.0.0:8080")
	for host, want := range map[string]int{"192.168.1.5:8080": 200, "127.0.0.1:8080": 200, "evil.example:8080": 403, "192.168.1.5:80": 403} {
		req := httptest.NewRequest("GET", "http://"+host+"/api/panel", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("0.0.0.0: Host %s: %d, want %d", host, rec.Code, want)
		}
	}
}
