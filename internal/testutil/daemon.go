package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe to read while a process writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Daemon is a running `attuned run` on the simulated board.
type Daemon struct {
	Cmd   *exec.Cmd
	Log   *SyncBuffer
	Panel string // http://127.0.0.1:PORT/
	Link  string // 127.0.0.1:PORT
	Data  string
}

// StartDaemon starts attuned with config (TOML) on free loopback ports and
// the simulated board unless config says otherwise, and waits until it runs.
func StartDaemon(t testing.TB, config string, args ...string) *Daemon {
	t.Helper()
	return StartDaemonWith(t, nil, config, args...)
}

// StartDaemonWith is StartDaemon with the command run through wrap, e.g.
// {"ip", "netns", "exec", NS} to put the device in another network
// namespace.
func StartDaemonWith(t testing.TB, wrap []string, config string, args ...string) *Daemon {
	t.Helper()
	for _, def := range []string{`listen = "127.0.0.1:0"`, `panel = "127.0.0.1:0"`, `board = "sim"`} {
		if !strings.Contains(config, strings.SplitN(def, " ", 2)[0]+" =") {
			config = def + "\n" + config
		}
	}
	// attuned stops if it cannot lock its memory: tests not run as root
	// run it without the lock.
	if os.Geteuid() != 0 && !strings.Contains(config, "lock_memory") {
		if strings.Contains(config, "[system]") {
			config = strings.Replace(config, "[system]", "[system]\nlock_memory = false", 1)
		} else {
			config += "\n[system]\nlock_memory = false\n"
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "attuned.toml")
	os.WriteFile(cfg, []byte(config), 0o600)
	ready := filepath.Join(dir, "ready.json")
	d := &Daemon{Log: &SyncBuffer{}}
	if m := regexp.MustCompile(`(?m)^data = "(.*)"`).FindStringSubmatch(config); m != nil {
		d.Data = m[1]
	}
	argv := append(append(append([]string(nil), wrap...), Binary(t, "attuned"), "run", "--config", cfg, "--ready-file", ready), args...)
	d.Cmd = exec.Command(argv[0], argv[1:]...)
	d.Cmd.Stderr = d.Log
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.Cmd.ProcessState == nil {
			d.Cmd.Process.Kill()
			d.Cmd.Wait()
		}
	})
	addrs := waitReady(t, d, ready, 15*time.Second)
	d.Link = addrs.Link
	if addrs.Panel != "" {
		d.Panel = "http://" + addrs.Panel + "/"
	}
	return d
}

// waitReady waits for attuned's ready file (--ready-file) and returns the
// addresses in it.
func waitReady(t testing.TB, d *Daemon, path string, timeout time.Duration) (addrs struct{ Link, Panel string }) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		raw, err := os.ReadFile(path)
		if err == nil {
			if err := json.Unmarshal(raw, &addrs); err != nil {
				t.Fatalf("ready file %s: %v: %q", path, err, raw)
			}
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready after %v; log:\n%s", timeout, d.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitLog waits until the daemon has logged s.
func (d *Daemon) WaitLog(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.Log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon never logged %q; log:\n%s", s, d.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and checks a clean exit.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.Cmd.Process.Signal(syscall.SIGTERM)
	if err := d.Cmd.Wait(); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, d.Log.String())
	}
}

// PanelState is the simulated panel's JSON.
type PanelState struct {
	State   string `json:"state"`
	Display string `json:"display"`
	Code    string `json:"code"`
}

// Panel reads GET /api/panel.
func (d *Daemon) PanelState(t testing.TB) PanelState {
	t.Helper()
	resp, err := http.Get(d.Panel + "api/panel")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p PanelState
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Press presses buttons on the simulated panel for ms milliseconds.
func (d *Daemon) Press(t testing.TB, ms int, buttons ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"buttons": buttons, "ms": ms})
	resp, err := http.Post(d.Panel+"api/panel/press", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("press %v: %s", buttons, resp.Status)
	}
}

// WaitState waits for the panel to show state.
func (d *Daemon) WaitState(t testing.TB, state string) PanelState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := d.PanelState(t)
		if p.State == state {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("panel never showed %s; last %+v\nlog:\n%s", state, p, d.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OpenPairing holds PAIR for 3 s and returns the code shown.
func (d *Daemon) OpenPairing(t testing.TB) string {
	t.Helper()
	d.Press(t, 3100, "pair")
	p := d.WaitState(t, "pairing")
	if len(p.Code) != 6 {
		t.Fatalf("pairing code %q", p.Code)
	}
	return p.Code
}

// Record presses REC, waits d, presses REC again, and returns when the
// daemon is ready again.
func (d *Daemon) Record(t testing.TB, dur time.Duration, marksAt ...time.Duration) {
	t.Helper()
	d.Press(t, 100, "rec")
	d.WaitState(t, "recording")
	start := time.Now()
	for _, m := range marksAt {
		time.Sleep(time.Until(start.Add(m)))
		d.Press(t, 60, "mark")
	}
	time.Sleep(time.Until(start.Add(dur)))
	d.Press(t, 100, "rec")
	d.WaitState(t, "ready")
}

// String describes the daemon for failure messages.
func (d *Daemon) String() string { return fmt.Sprintf("attuned (link %s, panel %s)", d.Link, d.Panel) }
