package system

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/board/hw"
	"attune.dev/attune/capture"
	"attune.dev/attune/custody"
	"attune.dev/attune/device"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// Options is what Run needs besides the configuration file's settings.
type Options struct {
	// Config is the daemon's configuration, validated (Config.Validate).
	Config Config
	// Version is the daemon's version: in the status, the manifests and
	// the audit chain's boot record.
	Version string
	// Log receives the daemon's log; nil discards it.
	Log *slog.Logger
	// Clock is the only clock the daemon times anything with: the state
	// machine's heartbeat and windows, a recording's elapsed time and
	// marks, the battery and watchdog intervals, the wall clock the
	// manifests and the audit chain read. nil means the real clock. The
	// front panel (Hardware) should be given the same one.
	Clock clockwork.Clock
	// Hardware is the board the daemon drives.
	Hardware Hardware
	// ReadyFile, if set, is written (atomically) once the daemon is ready
	// with the addresses it listens on, as JSON Addrs; a port 0 in the
	// configuration is the real port there. A stale file is removed at
	// start and the file is removed when Run returns. It is how tests and
	// scripts find a daemon listening on free ports.
	ReadyFile string
}

// Addrs is the ready file's content.
type Addrs struct {
	// Link is the paired link's address, e.g. "127.0.0.1:8443".
	Link string `json:"link"`
	// Panel is the simulated front panel's address, e.g. "127.0.0.1:8080";
	// empty without one.
	Panel string `json:"panel,omitempty"`
}

// Hardware is the board as Run drives it: its front panel and battery
// gauge. cmd/attuned builds it from the board profile and the ui package.
type Hardware struct {
	// Name is the board profile's name, for the log.
	Name string
	// Simulated is true on the simulated board: the wall clock is this
	// process's own (never the kernel's), and the battery, which changes
	// only when a script says so, is read every second instead of every 20.
	Simulated bool
	// Battery is the battery gauge; nil without one.
	Battery hw.Battery
	// Show shows the daemon's status on the LED and display until ctx is
	// done. Run stops it only after the state machine has returned, so the
	// last state is shown while a recording is sealed; then the lights go
	// out. nil: nothing to show.
	Show func(ctx context.Context, d *Daemon) error
	// Buttons turns button presses into the daemon's events (Daemon.Send)
	// until ctx is done. nil: no buttons.
	Buttons func(ctx context.Context, d *Daemon) error
	// WebPanel serves the simulated front panel on ln until ctx is done;
	// Run listens for it on Config.Panel. nil: no simulated panel.
	WebPanel func(ctx context.Context, ln net.Listener, d *Daemon) error
}

// Battery thresholds: warn at batteryWarn percent, then seal the recording
// (device.BatteryStop) while there is still power to do it cleanly.
const batteryWarn = 15

// Run is the daemon: it opens the store and the audit chain, loads the
// device key and the pairing, listens on the paired link (and the simulated
// panel), and runs the state machine with the front panel, the battery
// policy and systemd's notify and watchdog until ctx is done or SIGTERM or
// SIGINT arrives; the open recording is sealed before Run returns. A
// factory reset gives the device a new key: the link is served again with
// it on the same address, without a restart.
func Run(ctx context.Context, o Options) error {
	cfg := o.Config
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clock := o.Clock
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if o.ReadyFile != "" {
		if err := os.Remove(o.ReadyFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("run: ready file: %v", err)
		}
	}

	var rcpt storage.Recipients
	if cfg.Recipients != "" {
		var err error
		if rcpt, err = storage.ReadRecipientsFile(cfg.Recipients); err != nil {
			return fmt.Errorf("run: recipients: %v", err)
		}
	}
	store, err := storage.Open(cfg.Data, storage.Options{MinFree: uint64(cfg.Storage.MinFreeMB) << 20}, log)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	pace, _ := capture.ParsePace(cfg.Capture.Pace)
	spec := SourceSpec{Video: cfg.Capture.Source, Audio: cfg.Capture.Audio, Pace: pace}
	for _, m := range cfg.Capture.Modes {
		mode, _ := ParseMode(m)
		spec.Modes = append(spec.Modes, mode)
	}
	wall := NewClock()
	wall.Now = clock.Now
	wall.SetSystem = !o.Hardware.Simulated // the device's own clock: the laptop sets it
	rec := &Recorder{
		Store: store, Clock: wall, Log: log, Version: o.Version,
		Segment: cfg.SegmentDuration(), MaxDuration: cfg.MaxDuration(),
	}
	d := NewDaemon(rec, spec, log)
	d.Clock = clock
	d.SetRecipients(rcpt)

	// The audit chain: what happened to every recording, without personal
	// data; the laptop pulls it at each sync.
	// Its records' monotonic time is the daemon's time since it started.
	started := clock.Now()
	chain, err := OpenAudit(filepath.Join(cfg.Data, "audit.log"), func() (time.Duration, time.Time, bool) {
		now, trusted := wall.Wall()
		return clock.Since(started), now, trusted
	})
	if err != nil {
		return fmt.Errorf("run: %v (the chain is kept as it is; move audit.log aside to start a new one)", err)
	}
	defer chain.Close()
	rec.Audit = chain
	note(chain, log, custody.Record{Event: custody.EventBoot, Detail: o.Version})
	for _, id := range store.Recovered() {
		r := custody.Record{Event: custody.EventRecordingInterrupted, Recording: id}
		if ix, err := store.Index(id); err == nil {
			r.Count, r.Bytes, r.SHA256 = len(ix.Segments), ix.Bytes(), SegmentsDigest(ix)
		}
		note(chain, log, r)
	}

	// The device's TLS identity for the paired link. It can never decrypt
	// footage; it proves to the paired laptop that this is its device, and
	// signs erasure certificates. A factory reset destroys it.
	keyPath := filepath.Join(cfg.Data, "device.key")
	key, devID, err := loadDeviceKey(keyPath)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	backend := &linkBackend{d: d, data: cfg.Data, version: o.Version, chain: chain,
		keyPath: keyPath, rotated: make(chan struct{}, 1)}
	backend.setKey(key, devID)
	if err := backend.loadPairing(); err != nil {
		return fmt.Errorf("run: %v", err)
	}
	rcpt, _ = d.Recipients()
	// REC+PAIR confirmed on the device: the certificate waits on the device
	// for the next paired laptop.
	d.Reset = func(ctx context.Context) error {
		_, err := backend.factoryReset(true, "buttons")
		return err
	}

	// Without a host, the link listens only on its interfaces' addresses;
	// before they have one it waits for them (serveLink).
	linkLn, err := listenLink(cfg.Listen, cfg.Link.Interfaces, interfaceAddrs)
	switch {
	case errors.Is(err, errNoAddress):
		log.Warn("paired link: waiting for an address on its interfaces", "interfaces", cfg.Link.Interfaces)
	case err != nil:
		return fmt.Errorf("run: link: %v (choose another address with --listen)", err)
	}
	addrs := Addrs{Link: cfg.Listen}
	if linkLn != nil {
		addrs.Link = linkLn.Addr().String()
	}
	closeLink := func() {
		if linkLn != nil {
			linkLn.Close()
		}
	}
	var panelLn net.Listener
	if o.Hardware.WebPanel != nil {
		if panelLn, err = net.Listen("tcp", cfg.Panel); err != nil {
			closeLink()
			return fmt.Errorf("run: panel: %v (choose another address with --panel)", err)
		}
		addrs.Panel = panelLn.Addr().String()
	}

	sigCtx, stop := Signals(ctx, d, log)
	defer stop()
	// A ready file that cannot be written stops the daemon with its error.
	ctx, fail := context.WithCancel(sigCtx)
	defer fail()
	var readyErr error // written before fail, read after wg.Wait
	// The front panel outlives the state machine by a moment, so the last
	// state is shown while the recording is sealed; then the lights go out.
	panelCtx, stopPanel := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPanel()
	var wg sync.WaitGroup
	goRun := func(name string, c context.Context, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(c); err != nil && c.Err() == nil {
				log.Error("stopped", "part", name, "err", err)
			}
		})
	}
	hw := o.Hardware
	if hw.Show != nil {
		goRun("panel", panelCtx, func(c context.Context) error { return hw.Show(c, d) })
	}
	if hw.Buttons != nil {
		goRun("buttons", ctx, func(c context.Context) error { return hw.Buttons(c, d) })
	}
	if hw.Battery != nil {
		every := 20 * time.Second
		if hw.Simulated {
			every = time.Second // the simulated battery changes when a script says so
		}
		goRun("battery", ctx, func(c context.Context) error { return watchBattery(c, clock, hw.Battery, every, d, log) })
	}
	if panelLn != nil {
		log.Info("simulated front panel", "url", "http://"+addrs.Panel+"/")
		goRun("web panel", ctx, func(c context.Context) error { return hw.WebPanel(c, panelLn, d) })
	}
	log.Info("paired link", "addr", addrs.Link, "device", devID)
	goRun("link", ctx, func(c context.Context) error {
		return serveLink(c, clock, linkLn, cfg.Listen, backend, keyPath, cfg.Link.Interfaces, log)
	})
	goRun("watchdog", ctx, func(c context.Context) error {
		watchdog(c, clock, d.Alive)
		return nil
	})
	goRun("notify", ctx, func(c context.Context) error {
		select {
		case <-d.Ready():
			if o.ReadyFile != "" {
				if readyErr = writeReady(o.ReadyFile, addrs); readyErr != nil {
					fail()
					return nil
				}
			}
			notify("READY=1")
		case <-c.Done():
		}
		return nil
	})
	log.Info("attuned running", "version", o.Version, "board", hw.Name, "source", cfg.Capture.Source, "paired", len(rcpt.List) > 0)
	err = d.Run(ctx)
	notify("STOPPING=1")
	stop()
	stopPanel()
	wg.Wait()
	if o.ReadyFile != "" {
		os.Remove(o.ReadyFile)
	}
	if err == nil {
		err = readyErr
	}
	return err
}

// writeReady writes the ready file atomically.
func writeReady(path string, a Addrs) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("run: ready file: %v", err)
	}
	if err := storage.WriteFileAtomic(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("run: ready file: %v", err)
	}
	return nil
}

// loadDeviceKey loads the device key at path, making one if there is none
// (first boot, or after a factory reset), and returns it with the device id
// derived from its certificate's pin.
func loadDeviceKey(path string) (ed25519.PrivateKey, string, error) {
	key, err := link.LoadOrCreateKey(path)
	if err != nil {
		return nil, "", fmt.Errorf("device key: %v", err)
	}
	cert, err := link.SelfSignedCert(key, "attune")
	if err != nil {
		return nil, "", err
	}
	pin, err := link.CertPin(cert)
	if err != nil {
		return nil, "", err
	}
	return key, custody.DeviceID(pin), nil
}

// serveLink serves the paired link on ln, announced on those of ifaces
// that exist, until ctx is done. A nil ln: it listens on listen (see
// listenLink) once the interfaces have an address, trying every few
// seconds. After a factory reset it serves again with the new key on the
// same address.
func serveLink(ctx context.Context, clock clockwork.Clock, ln net.Listener, listen string, b *linkBackend, keyPath string, ifaces []string, log *slog.Logger) error {
	for ln == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(5 * time.Second):
		}
		var err error
		ln, err = listenLink(listen, ifaces, interfaceAddrs)
		if err != nil && !errors.Is(err, errNoAddress) {
			return fmt.Errorf("link: %v", err)
		}
		if ln != nil {
			log.Info("paired link", "addr", ln.Addr().String())
		}
	}
	// After a reset: the same address, or the interfaces' addresses on the
	// same port.
	addr := ln.Addr().String()
	if host, _, _ := net.SplitHostPort(listen); host == "" {
		_, port, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort("", port)
	}
	var present []string // announced only where there is such an interface
	for _, name := range ifaces {
		if _, err := net.InterfaceByName(name); err == nil {
			present = append(present, name)
		}
	}
	ifaces = present
	for rotated := false; ; rotated = true {
		key, id, err := loadDeviceKey(keyPath)
		if err != nil {
			ln.Close()
			return err
		}
		b.setKey(key, id)
		if rotated {
			log.Info("paired link: new device key after the reset", "device", id)
		}
		srv := &link.Server{Key: key, Log: log, Backend: b, Name: deviceName(id)}
		sctx, stopSrv := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Serve(sctx, ln) }()
		// Announced under the current key's name; after a reset, under the
		// new one.
		var announced sync.WaitGroup
		if len(ifaces) > 0 {
			port := ln.Addr().(*net.TCPAddr).Port
			announced.Go(func() {
				if err := link.Announce(sctx, deviceName(id), port, ifaces); err != nil && sctx.Err() == nil {
					log.Error("stopped", "part", "discovery", "err", err)
				}
			})
		}
		var serveErr error
		select {
		case serveErr = <-done:
		case <-b.rotated:
			stopSrv()
			serveErr = <-done
		case <-ctx.Done():
			stopSrv()
			<-done
			announced.Wait()
			return nil
		}
		stopSrv()
		announced.Wait()
		if serveErr != nil || ctx.Err() != nil {
			return serveErr
		}
		if ln, err = listenLink(addr, ifaces, interfaceAddrs); err != nil {
			return fmt.Errorf("link: listen again after the reset: %v", err)
		}
	}
}

// watchBattery reads the gauge every interval: it gives the daemon the
// charge, warns once when it runs low, and seals the recording when it is
// nearly flat. A gauge that stops answering is warned about once, and the
// daemon runs without a battery figure until it answers again.
func watchBattery(ctx context.Context, clock clockwork.Clock, b hw.Battery, every time.Duration, d *Daemon, log *slog.Logger) error {
	t := clock.NewTicker(every)
	defer t.Stop()
	warned, failing := false, false
	for {
		r, err := b.Read()
		if err != nil {
			// One warning per outage, and no stale figure meanwhile.
			if !failing {
				log.Warn("battery gauge: running without a battery figure until it answers again", "err", err)
				d.SetBattery(-1)
			}
			failing = true
		} else {
			if failing {
				log.Info("battery gauge answers again")
			}
			failing = false
			d.SetBattery(r.Percent)
			switch {
			case r.Percent <= device.BatteryStop && d.Status().State == device.StateRecording:
				log.Warn("battery nearly flat: sealing the recording", "percent", r.Percent)
				d.Send(device.EventStop)
			case r.Percent <= batteryWarn && !warned:
				log.Warn("battery low", "percent", r.Percent)
				warned = true
			case r.Percent > batteryWarn:
				warned = false
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
		}
	}
}
