package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
	"attune.dev/attune/system"
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
	board := fs.String("board", "", "board profile (overrides config board)")
	data := fs.String("data", "", "data directory (overrides config data)")
	rcptFile := fs.String("recipients", "", "age recipients file (overrides config recipients)")
	listen := fs.String("listen", "", "link API address (overrides config listen)")
	panel := fs.String("panel", "", "simulated panel address (overrides config panel)")
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
	set(&cfg.Board, *board)
	set(&cfg.Data, *data)
	set(&cfg.Recipients, *rcptFile)
	set(&cfg.Listen, *listen)
	set(&cfg.Panel, *panel)
	set(&cfg.Capture.Source, *source)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log := newLogger(stderr, cfg.System.LogLevel)
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

	ctx, stop := system.Signals(ctx, d, log)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		system.Watchdog(ctx, func() bool { return d.Status().State != system.StateBooting })
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-d.Ready():
			system.Notify("READY=1")
		case <-ctx.Done():
		}
	}()
	log.Info("attuned running", "version", version, "board", cfg.Board, "source", cfg.Capture.Source, "paired", len(rcpt.List) > 0)
	err = d.Run(ctx)
	system.Notify("STOPPING=1")
	wg.Wait()
	return err
}
