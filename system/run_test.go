package system

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jonboulle/clockwork"

	"attune.dev/attune/board"
	"attune.dev/attune/custody"
	"attune.dev/attune/device"
	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/storage"
)

type runEnv struct {
	dir   string
	ready string
	clock *clockwork.FakeClock
	sim   *board.Sim
	log   *testutil.SyncBuffer
	d     chan *Daemon
	done  chan error
	stop  context.CancelFunc
}

// startRun runs the daemon in this process on the simulated battery, a
// fake clock and free loopback ports, and waits for its ready file.
func startRun(t *testing.T) (*runEnv, Addrs, *Daemon) {
	t.Helper()
	dir := t.TempDir()
	e := &runEnv{dir: dir, ready: filepath.Join(dir, "ready.json"), clock: clockwork.NewFakeClock(),
		sim: board.NewSim(board.WithBattery(80)), log: &testutil.SyncBuffer{},
		d: make(chan *Daemon, 1), done: make(chan error, 1)}
	cfg := DefaultConfig()
	cfg.Board, cfg.Data, cfg.Listen, cfg.Panel = "sim", filepath.Join(dir, "data"), "127.0.0.1:0", "127.0.0.1:0"
	cfg.Capture.Source, cfg.Capture.Audio = "testsrc", "none"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	hw := Hardware{
		Name: "sim", Simulated: true, Battery: e.sim.Board().Battery,
		Buttons: func(ctx context.Context, d *Daemon) error {
			e.d <- d
			<-ctx.Done()
			return nil
		},
		WebPanel: func(ctx context.Context, ln net.Listener, d *Daemon) error {
			srv := &http.Server{Handler: http.NotFoundHandler()}
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	go func() {
		e.done <- Run(ctx, Options{Config: cfg, Version: "test", Clock: e.clock, Hardware: hw, ReadyFile: e.ready,
			Log: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	t.Cleanup(func() { e.shutdown(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, err := os.ReadFile(e.ready)
		if err == nil {
			var a Addrs
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatalf("ready file: %v %q", err, raw)
			}
			return e, a, <-e.d
		}
		select {
		case err := <-e.done:
			t.Fatalf("Run returned before it was ready: %v\n%s", err, e.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready file; log:\n%s", e.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *runEnv) shutdown(t *testing.T) {
	t.Helper()
	e.stop()
	select {
	case err, ok := <-e.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(e.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// pinAt is the pin of the certificate the link serves at addr.
func pinAt(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return custody.Pin(c.ConnectionState().PeerCertificates[0])
}

// TestRunReadyFile: the ready file has the real ports, the boot is on the
// audit chain, and the file is gone once Run returns.
func TestRunReadyFile(t *testing.T) {
	e, a, _ := startRun(t)
	for _, addr := range []string{a.Link, a.Panel} {
		if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
			t.Fatalf("ready file addresses %+v", a)
		}
	}
	if c, err := net.Dial("tcp", a.Panel); err != nil {
		t.Errorf("panel not listening at %s: %v", a.Panel, err)
	} else {
		c.Close()
	}
	pinAt(t, a.Link)
	raw, _ := os.ReadFile(filepath.Join(e.dir, "data", "audit.log"))
	if !strings.Contains(string(raw), `"boot"`) {
		t.Errorf("no boot record in the audit chain:\n%s", raw)
	}
	e.shutdown(t)
	if _, err := os.Stat(e.ready); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ready file left after Run returned: %v", err)
	}
}

// TestRunBattery: the gauge is read on the daemon's clock; a low battery is
// warned about once.
func TestRunBattery(t *testing.T) {
	e, _, d := startRun(t)
	waitFor(t, func() bool { return d.Status().Battery == 80 }, "the first battery reading")
	e.sim.SetBattery(12)
	e.clock.Advance(time.Second)
	waitFor(t, func() bool { return d.Status().Battery == 12 }, "the low battery reading")
	waitFor(t, func() bool { return strings.Contains(e.log.String(), "battery low") }, "the low battery warning")
	e.clock.Advance(time.Second)
	e.clock.Advance(time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(e.log.String(), "battery low"); n != 1 {
		t.Errorf("warned %d times about one low battery", n)
	}
}

// TestRunResetRotatesKey: a factory reset confirmed on the buttons leaves
// an erasure certificate, and the link is served on the same address with
// a new key.
func TestRunResetRotatesKey(t *testing.T) {
	e, a, d := startRun(t)
	before := pinAt(t, a.Link)
	d.Send(device.EventReset)
	waitFor(t, func() bool { return d.Status().State == device.StateConfirmReset }, "confirm_reset")
	d.Send(device.EventRec)
	waitFor(t, func() bool { return strings.Contains(e.log.String(), "new device key after the reset") }, "the new key")
	if after := pinAt(t, a.Link); after == before {
		t.Error("the link serves the old key after the reset")
	}
	certs, _ := filepath.Glob(filepath.Join(e.dir, "data", "certificates", "erasure-*.json"))
	if len(certs) != 1 {
		t.Errorf("%d erasure certificates after one reset", len(certs))
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunResetLosingFootage: a button reset with unsynced footage on the
// device needs REC twice (rSt?, then LoSE), and the erasure certificate
// lists the lost recording with its segments not synced.
func TestRunResetLosingFootage(t *testing.T) {
	e, a, d := startRun(t)
	pin := pinAt(t, a.Link)
	id, _ := age.GenerateX25519Identity()
	rcpt, err := storage.NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	d.SetRecipients(rcpt)
	waitFor(t, func() bool { return d.Status().State == device.StateReady }, "ready")
	d.Send(device.EventRec)
	waitFor(t, func() bool { return d.Status().State == device.StateRecording }, "recording")
	time.Sleep(300 * time.Millisecond)
	d.Send(device.EventRec)
	waitFor(t, func() bool { return d.Status().State == device.StateReady && d.Status().LastID != "" }, "the recording sealed")
	lost := d.Status().LastID

	d.Send(device.EventReset)
	waitFor(t, func() bool { return d.Status().State == device.StateConfirmReset }, "confirm_reset")
	d.Send(device.EventRec)
	waitFor(t, func() bool { return d.Status().State == device.StateConfirmLoss }, "confirm_loss")
	if certs, _ := filepath.Glob(filepath.Join(e.dir, "data", "certificates", "erasure-*.json")); len(certs) != 0 {
		t.Fatal("reset before the second confirmation")
	}
	d.Send(device.EventRec)
	waitFor(t, func() bool { return strings.Contains(e.log.String(), "new device key after the reset") }, "the new key")
	certs, _ := filepath.Glob(filepath.Join(e.dir, "data", "certificates", "erasure-*.json"))
	if len(certs) != 1 {
		t.Fatalf("%d erasure certificates after one reset", len(certs))
	}
	raw, err := os.ReadFile(certs[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := custody.VerifyCertificatePin(raw, pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Recordings) != 1 || c.Recordings[0].ID != lost || c.Recordings[0].Complete || len(c.Recordings[0].Segments) == 0 {
		t.Fatalf("certificate does not list the lost recording %s: %+v", lost, c.Recordings)
	}
	for i, s := range c.Recordings[0].Segments {
		if s.Synced {
			t.Errorf("lost segment %d listed as synced", i)
		}
	}
}
