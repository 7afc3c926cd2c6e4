package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
	"attune.dev/attune/system"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  attuned run [--config FILE] [--board NAME] [--data DIR] [--recipients FILE] [--listen ADDR] [--panel ADDR]
              [--source SOURCE] [--ready-file PATH]
  attuned record --data DIR --recipients FILE [--source testsrc|file:PATH|v4l2:/dev/videoN]
                 [--audio auto|testsrc|none|alsa:NAME] [--duration 10s] [--pace realtime|none]
  attuned gadget [--config FILE]
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
	case "gadget":
		return runGadget(ctx, args[1:], stderr)
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

// lockMemoryFunc locks the process's memory (tests replace it).
var lockMemoryFunc = system.LockMemory

// lockMemory locks memory unless the config turned it off; its error
// names the fix.
func lockMemory(enabled bool) error {
	if !enabled {
		return nil
	}
	return lockMemoryFunc()
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
	// A one-off recording from the command line (make record, the
	// benchmarks) goes on without the lock, and says so.
	if err := lockMemory(true); err != nil {
		log.Warn("memory not locked", "err", err)
	}
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
	readyFile := fs.String("ready-file", "", `once running, write {"link":ADDR,"panel":ADDR} here (for tests and scripts)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	cfg, found, err := system.LoadConfigOrDefaults(*cfgPath)
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
	if *cfgPath != "" && !found {
		log.Info("no config file, running on the defaults", "config", *cfgPath)
	}
	tuneGC()
	if err := lockMemory(cfg.System.LockMemory); err != nil {
		return fmt.Errorf("run: %w", err)
	}

	clock := clockwork.NewRealClock()
	hw, b, err := system.OpenBoard(cfg, clock, log)
	if err != nil {
		return fmt.Errorf("run: %v", err)
	}
	defer b.Close()
	return system.Run(ctx, system.Options{
		Config:    cfg,
		Version:   version,
		Log:       log,
		Clock:     clock,
		Hardware:  hw,
		ReadyFile: *readyFile,
	})
}

// runGadget is the USB link (system.USBLink), run as root by
// attune-gadget.service before the daemon starts.
func runGadget(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("gadget", stderr)
	cfgPath := fs.String("config", "", "TOML config file (link.usb_gadget turns the USB link on)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("gadget: unexpected argument %q", fs.Arg(0))
	}
	cfg, found, err := system.LoadConfigOrDefaults(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.System.LogLevel)
	if *cfgPath != "" && !found {
		log.Info("no config file, running on the defaults", "config", *cfgPath)
	}
	return system.USBLink(ctx, cfg, version, system.MachineIDPath, log)
}
