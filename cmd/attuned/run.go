package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/board"
	"attune.dev/attune/board/hw"
	"attune.dev/attune/capture"
	"attune.dev/attune/custody"
	"attune.dev/attune/device"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
	"attune.dev/attune/system"
	"attune.dev/attune/ui"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  attuned run [--config FILE] [--board NAME] [--data DIR] [--recipients FILE] [--listen ADDR] [--panel ADDR]
  attuned record --data DIR --recipients FILE [--source testsrc|file:PATH|v4l2:/dev/videoN]
                 [--audio auto|testsrc|none|alsa:NAME] [--duration 10s] [--pace realtime|none]
  attuned version
`

// Run is attuned's whole command line; main only calls it.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return runDaemon(ctx, args[1:], stdout, stderr)
	case "record":
		return runRecord(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "attuned", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// tuneGC trades a little memory for CPU: the live heap is a few MB (one
// frame in flight, age's 64 KiB chunk), so collecting at 5x instead of 2x
// keeps RSS far below the Pi's limits while halving collections. GOGC in
// the environment wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(64 << 20)
	}
}

func lockMemory(enabled bool, log *slog.Logger) {
	if !enabled {
		return
	}
	if err := system.LockMemory(); err != nil {
		log.Warn("memory lock", "err", err)
	}
}

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("record", stderr)
	def := system.DefaultConfig()
	data := fs.String("data", "", "data directory (required)")
	rcptFile := fs.String("recipients", "", "file of age recipients, one per line (required)")
	source := fs.String("source", "testsrc", "video source: testsrc, file:PATH or v4l2:/dev/videoN")
	audio := fs.String("audio", "auto", "audio source: auto, testsrc, none or alsa:NAME")
	duration := fs.Duration("duration", 0, "stop after this long (default: the whole file for file:, else the maximum length)")
	maxLen := fs.Duration("max", def.MaxDuration(), "maximum recording length")
	pace := fs.String("pace", "realtime", "for file: and testsrc: realtime or none (as fast as possible)")
	minFree := fs.Int("min-free-mb", def.Storage.MinFreeMB, "refuse to start, and end, below this much free space")
	segment := fs.Duration("segment", def.SegmentDuration(), "flush interval")
	logLevel := fs.String("log", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("record: unexpected argument %q", fs.Arg(0))
	}
	if *data == "" {
		return errors.New("record: --data DIR is required")
	}
	if *rcptFile == "" {
		return errors.New("record: --recipients FILE is required (one age recipient per line, as age -R reads)")
	}
	p, err := capture.ParsePace(*pace)
	if err != nil {
		return fmt.Errorf("record: --pace: %v", err)
	}
	if err := system.CheckSource(*source); err != nil {
		return fmt.Errorf("record: --source: %v", err)
	}
	if err := system.CheckAudio(*audio); err != nil {
		return fmt.Errorf("record: --audio: %v", err)
	}
	log := newLogger(stderr, *logLevel)
	if path := os.Getenv("ATTUNE_CPUPROFILE"); path != "" { // for make bench investigations
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("record: cpu profile: %v", err)
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	tuneGC()
	lockMemory(true, log)
	rcpt, err := storage.ReadRecipientsFile(*rcptFile)
	if err != nil {
		return fmt.Errorf("record: %v", err)
	}
	store, err := storage.Open(*data, storage.Options{MinFree: uint64(*minFree) << 20}, log)
	if err != nil {
		return fmt.Errorf("record: %v", err)
	}
	limit := *maxLen
	if *duration > 0 {
		limit = *duration
	} else if strings.HasPrefix(*source, "file:") {
		limit = 0 // the whole file
	}
	spec := system.SourceSpec{Video: *source, Audio: *audio, Pace: p}
	srcs, err := system.OpenSources(spec, log)
	if err != nil {
		return fmt.Errorf("record: %v", err)
	}
	ctx, stop := system.Signals(ctx, nil, log)
	defer stop()
	r := &system.Recorder{Store: store, Clock: system.NewClock(), Log: log, Version: version, Segment: *segment, MaxDuration: limit}
	res, err := r.Record(ctx, srcs, rcpt, spec, nil)
	if res.ID != "" {
		fmt.Fprintln(stdout, res.ID)
	}
	if err != nil {
		return err
	}
	if res.EndReason == "disk-full" {
		fmt.Fprintf(stderr, "attuned: storage full: recording %s ended after %.1fs, all %d segments sealed\n", res.ID, res.Stats.Duration.Seconds(), res.Segments)
	}
	return nil
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	cfgPath := fs.String("config", "", "TOML config file")
	boardName := fs.String("board", "", "board profile: sim, pi-ref or a file (overrides config board)")
	data := fs.String("data", "", "data directory (overrides config data)")
	rcptFile := fs.String("recipients", "", "age recipients file (overrides config recipients)")
	listen := fs.String("listen", "", "link API address (overrides config listen)")
	panelAddr := fs.String("panel", "", "simulated panel address (overrides config panel)")
	source := fs.String("source", "", "video source (overrides config capture.source)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := system.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Board, *boardName)
	set(&cfg.Data, *data)
	set(&cfg.Recipients, *rcptFile)
	set(&cfg.Listen, *listen)
	set(&cfg.Panel, *panelAddr)
	set(&cfg.Capture.Source, *source)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log := newLogger(stderr, cfg.System.LogLevel)
	tuneGC()
	lockMemory(cfg.System.LockMemory, log)

	var rcpt storage.Recipients
	if cfg.Recipients != "" {
		if rcpt, err = storage.ReadRecipientsFile(cfg.Recipients); err != nil {
			return fmt.Errorf("run: recipients: %v", err)
		}
	}
	store, err := storage.Open(cfg.Data, storage.Options{MinFree: uint64(cfg.Storage.MinFreeMB) << 20}, log)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	pace, _ := capture.ParsePace(cfg.Capture.Pace)
	spec := system.SourceSpec{Video: cfg.Capture.Source, Audio: cfg.Capture.Audio, Pace: pace}
	for _, m := range cfg.Capture.Modes {
		mode, _ := system.ParseMode(m)
		spec.Modes = append(spec.Modes, mode)
	}
	rec := &system.Recorder{
		Store: store, Clock: system.NewClock(), Log: log, Version: version,
		Segment: cfg.SegmentDuration(), MaxDuration: cfg.MaxDuration(),
	}
	d := system.NewDaemon(rec, spec, log)
	d.SetRecipients(rcpt)

	// The audit chain: what happened to every recording, without personal
	// data; the laptop pulls it at each sync.
	chain, err := system.OpenAudit(filepath.Join(cfg.Data, "audit.log"), system.AuditClock(rec.Clock))
	if err != nil {
		return fmt.Errorf("run: %v (the chain is kept as it is; move audit.log aside to start a new one)", err)
	}
	defer chain.Close()
	rec.Audit = chain
	auditNote := func(r custody.Record) {
		if _, err := chain.Append(r); err != nil {
			log.Error("audit record not written", "err", err)
		}
	}
	auditNote(custody.Record{Event: custody.EventBoot, Detail: version})
	for _, id := range store.Recovered() {
		r := custody.Record{Event: custody.EventRecordingInterrupted, Recording: id}
		if ix, err := store.Index(id); err == nil {
			r.Count, r.Bytes, r.SHA256 = len(ix.Segments), ix.Bytes(), system.SegmentsDigest(ix)
		}
		auditNote(r)
	}

	// The device's TLS identity for the paired link. It can never decrypt
	// footage; it proves to the paired laptop that this is its device, and
	// signs erasure certificates. A factory reset destroys it.
	keyPath := filepath.Join(cfg.Data, "device.key")
	loadKey := func() (ed25519.PrivateKey, string, error) {
		key, err := link.LoadOrCreateKey(keyPath)
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
		return key, pin[:16], nil
	}
	devKey, devID, err := loadKey()
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	rotate := make(chan struct{}, 1)
	backend := &system.LinkBackend{D: d, Data: cfg.Data, DeviceID: devID, Version: version, Chain: chain,
		Key: devKey, KeyPath: keyPath, Rotate: func() {
			select {
			case rotate <- struct{}{}:
			default:
			}
		}}
	if err := backend.LoadPairing(); err != nil {
		return fmt.Errorf("run: %v", err)
	}
	rcpt, _ = d.Recipients()
	// REC+PAIR confirmed on the device: the certificate waits on the device
	// for the next paired laptop.
	d.Reset = func(ctx context.Context) error {
		_, err := backend.FactoryReset(true, "buttons")
		return err
	}
	linkLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("run: link: %v (choose another address with --listen)", err)
	}

	prof, err := board.LoadProfile(cfg.Board)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	var (
		hw  *board.Board
		sim *board.Sim
	)
	if prof.Simulated() {
		if sim, err = board.NewSimFromProfile(prof); err != nil {
			return fmt.Errorf("run: %v", err)
		}
		hw = sim.Board()
	} else {
		if hw, err = board.Open(prof); err != nil {
			return fmt.Errorf("run: %v", err)
		}
		rec.Clock.SetSystem = true // the device's own clock: the laptop sets it
	}
	defer hw.Close()

	var panelLn net.Listener
	if sim != nil {
		if panelLn, err = net.Listen("tcp", cfg.Panel); err != nil {
			return fmt.Errorf("run: panel: %v (choose another address with --panel)", err)
		}
	}

	ctx, stop := system.Signals(ctx, d, log)
	defer stop()
	// The front panel outlives the state machine by a moment, so the last
	// state is shown while the recording is sealed; then the lights go out.
	panelCtx, stopPanel := context.WithCancel(context.Background())
	defer stopPanel()
	clock := clockwork.NewRealClock()
	panel := ui.NewPanel(clock, hw.LED, hw.Display, log)
	var wg sync.WaitGroup
	goRun := func(name string, c context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(c); err != nil && c.Err() == nil {
				log.Error("stopped", "part", name, "err", err)
			}
		}()
	}
	goRun("panel", panelCtx, panel.Run)
	goRun("indicators", panelCtx, func(c context.Context) error {
		return ui.Follow(c, clock, panel, d.Changed(), d.Status)
	})
	goRun("buttons", ctx, func(c context.Context) error {
		return ui.RunButtons(c, clock, hw.Buttons, func(a ui.Action) {
			if ev, ok := events[a]; ok {
				d.Send(ev)
			}
		})
	})
	if hw.Battery != nil {
		every := 20 * time.Second
		if sim != nil {
			every = time.Second // the simulated battery changes when a script says so
		}
		goRun("battery", ctx, func(c context.Context) error { return watchBattery(c, hw.Battery, every, d, log) })
	}
	if sim != nil {
		web := &ui.WebPanel{Sim: sim, Panel: panel, Status: d.Status, Clock: clock, Log: log}
		log.Info("simulated front panel", "url", "http://"+panelLn.Addr().String()+"/")
		goRun("web panel", ctx, func(c context.Context) error { return web.Serve(c, panelLn) })
	}
	log.Info("paired link", "addr", linkLn.Addr().String(), "device", backend.DeviceID)
	linkAddr := linkLn.Addr().String()
	goRun("link", ctx, func(c context.Context) error {
		// Serve until the daemon stops; after a factory reset, serve again
		// with the new key on the same address.
		ln := linkLn
		for rotated := false; ; rotated = true {
			key, id, err := loadKey()
			if err != nil {
				return err
			}
			backend.SetKey(key, id)
			if rotated {
				log.Info("paired link: new device key after the reset", "device", id)
			}
			srv := &link.Server{Key: key, Log: log, Backend: backend, Name: system.DeviceName(id)}
			sctx, stopSrv := context.WithCancel(c)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(sctx, ln) }()
			// Announced under the current key's name; after a reset, under
			// the new one.
			var announced sync.WaitGroup
			if len(cfg.Link.Interfaces) > 0 {
				port := ln.Addr().(*net.TCPAddr).Port
				announced.Go(func() {
					if err := link.Announce(sctx, system.DeviceName(id), port, cfg.Link.Interfaces); err != nil && sctx.Err() == nil {
						log.Error("stopped", "part", "discovery", "err", err)
					}
				})
			}
			var serveErr error
			select {
			case serveErr = <-done:
			case <-rotate:
				stopSrv()
				serveErr = <-done
			case <-c.Done():
				stopSrv()
				<-done
				announced.Wait()
				return nil
			}
			stopSrv()
			announced.Wait()
			if serveErr != nil || c.Err() != nil {
				return serveErr
			}
			if ln, err = net.Listen("tcp", linkAddr); err != nil {
				return fmt.Errorf("link: listen again after the reset: %v", err)
			}
		}
	})
	goRun("watchdog", ctx, func(c context.Context) error {
		system.Watchdog(c, d.Alive)
		return nil
	})
	goRun("notify", ctx, func(c context.Context) error {
		select {
		case <-d.Ready():
			system.Notify("READY=1")
		case <-c.Done():
		}
		return nil
	})
	log.Info("attuned running", "version", version, "board", prof.Name, "source", cfg.Capture.Source, "paired", len(rcpt.List) > 0)
	err = d.Run(ctx)
	system.Notify("STOPPING=1")
	stop()
	stopPanel()
	wg.Wait()
	return err
}

// events maps front-panel actions to the state machine's events.
var events = map[ui.Action]device.Event{
	ui.ActionRec:   device.EventRec,
	ui.ActionMark:  device.EventMark,
	ui.ActionPair:  device.EventPair,
	ui.ActionReset: device.EventReset,
	ui.ActionOther: device.EventOther,
}

// Battery thresholds: warn, then seal the recording while there is still
// power to do it cleanly.
const batteryWarn = 15

func watchBattery(ctx context.Context, b hw.Battery, every time.Duration, d *system.Daemon, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	warned := false
	for {
		r, err := b.Read()
		if err != nil {
			log.Warn("battery gauge", "err", err)
		} else {
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
		case <-t.C:
		}
	}
}
