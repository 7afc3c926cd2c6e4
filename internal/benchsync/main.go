//go:build linux

// Command benchsync is the sync benchmark: it makes one ~1 GB recording on
// a simulated device (`attuned run --board sim`, a file source replayed
// with pace = "none", REC pressed on the panel API, paired with
// `attune pair --code`), then moves that recording's bytes over loopback
// three ways, alternating, on the same bytes each round:
//
//   - ours: `attune sync` (mutual TLS 1.3 to attuned; SHA-256 check, full
//     age decryption and an fsync of every segment, acknowledgement);
//   - curl fetching every file from a stock nginx over TLS 1.3, one
//     process, one connection;
//   - the same curl followed by sync(1), timed to the end of the sync:
//     like for like, the bytes on disk as attune sync's are when it
//     acknowledges them;
//   - scp -r from a stock OpenSSH sshd (default cipher and protocol).
//
// Two diagnostic contenders split ours into its parts: the Go link client
// alone (download to files, nothing else) and curl against attuned's own
// link API. A last, untimed run of the same sync code in-process takes a
// CPU profile and a wall-clock breakdown. `make bench` runs it and it
// rewrites its section of docs/BENCHMARKS.md.
//
// It runs its own sshd, nginx and attuned on 127.0.0.1 and stops them on
// the way out, also on failure or Ctrl-C. sshd needs root.
//
//	go run ./internal/benchsync -attuned bin/attuned -attune bin/attune -out docs/BENCHMARKS.md [-rounds 3]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"attune.dev/attune/internal/benchdoc"
)

// Goals for ours against the stock tools, by median throughput.
const (
	goalCurlRatio = 0.9 // ours / curl from nginx, at least
	goalSCPRatio  = 1.0 // ours / scp, more than
)

const (
	startMarker = "<!-- benchsync:start -->"
	endMarker   = "<!-- benchsync:end -->"
	// Around the sync figures in the README's "How fast".
	readmeStart = "<!-- benchsync:readme:start -->"
	readmeEnd   = "<!-- benchsync:readme:end -->"
)

type config struct {
	attuned, attune string
	out             string
	readme          string
	rounds          int
	seconds         int
	work            string
	keep            bool
	timeout         time.Duration
	quiet           time.Duration
	retries         int
	only            string
	baseline        string

	// Resolved tools.
	ffmpeg, ffprobe, sshd, sshKeygen, ssh, scp, nginx, curl, goTool string
	sftpServer, perf, sync                                          string
}

func main() {
	var c config
	flag.StringVar(&c.attuned, "attuned", "bin/attuned", "the attuned binary (`make build` makes it)")
	flag.StringVar(&c.attune, "attune", "bin/attune", "the attune binary (`make build` makes it)")
	flag.StringVar(&c.out, "out", "", "markdown file whose benchsync section to create or replace (empty: stdout only)")
	flag.StringVar(&c.readme, "readme", "", "README whose figures between the benchsync:readme markers to replace (empty: leave it)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every contender once, in alternating order")
	flag.IntVar(&c.seconds, "seconds", 600, "length of the recording in seconds (600 s of 720p30 MJPEG q4 is about 1 GB)")
	flag.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "benchsync"), "work directory: the generated input and the last CPU profile stay here, each run's files go in a run-* directory removed at the end")
	flag.BoolVar(&c.keep, "keep", false, "keep the run directory (device data, laptop home, server configs) for inspection")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit for any one run")
	flag.DurationVar(&c.quiet, "quiet", 3*time.Minute, "before each run, wait up to this long for other processes to leave the CPUs idle")
	flag.StringVar(&c.baseline, "baseline", "", "another attune binary (an earlier build) to run beside ours, for comparing a change; not in the report")
	flag.StringVar(&c.only, "only", "", "comma-separated contenders to run (ours, curl, curlsync, scp, godl, curlattuned), for quick comparisons; the report needs them all")
	flag.IntVar(&c.retries, "retries", 3, "run again, up to this many times, a run during which other processes took more than a tenth of a CPU")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./internal/benchsync -attuned bin/attuned -attune bin/attune [-out docs/BENCHMARKS.md] [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	// Ctrl-C or SIGTERM cancels ctx: the run in progress is killed and
	// run's deferred cleanup stops every server it started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsync:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	if c.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if c.seconds < 60 {
		return errors.New("-seconds must be at least 60")
	}
	load := loadAvg()
	if err := findTools(&c); err != nil {
		return err
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	in, err := makeInput(ctx, c, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "input: %s: %.1f MB, %.0f s\n", in.path, float64(in.size)/1e6, in.seconds)

	// A directory of its own, so that two runs sharing -work (two people
	// on one machine) cannot delete each other's files.
	runDir, err := os.MkdirTemp(c.work, "run-")
	if err != nil {
		return err
	}
	var procs []*bgProc
	defer func() {
		// Every server this run started, last first; then the files.
		for _, p := range slices.Backward(procs) {
			p.stop()
		}
		if !c.keep {
			os.RemoveAll(runDir)
		} else {
			fmt.Fprintf(stderr, "kept %s\n", runDir)
		}
	}()

	// Run the binaries under names of their own: on a shared machine,
	// someone tidying up test daemons with `pkill attuned` must not stop
	// the benchmark's device half-way.
	if c.attuned, err = copyFile(c.attuned, filepath.Join(runDir, "bin", "benchsync-device")); err != nil {
		return err
	}
	if c.attune, err = copyFile(c.attune, filepath.Join(runDir, "bin", "benchsync-laptop")); err != nil {
		return err
	}

	// The device, paired, holding one recording.
	dev, err := startDevice(ctx, c, runDir, in.path)
	if dev != nil {
		procs = append(procs, dev.proc)
	}
	if err != nil {
		return err
	}
	home := filepath.Join(runDir, "home")
	if err := dev.pair(ctx, c.attune, home); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "paired a laptop home with the device at %s\n", dev.link)
	start := time.Now()
	rec, err := dev.record(ctx, c.timeout, filepath.Join(runDir, "pristine"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "recorded %s in %.1f s: %d segments, %.1f MB (segments + manifest), ended by %s\n",
		rec.id, time.Since(start).Seconds(), len(rec.index.Segments), float64(rec.bytes)/1e6, rec.endReason)

	// The stock servers, serving the pristine copy.
	srv, err := startServers(ctx, c, runDir, rec.pristine, func(p *bgProc) { procs = append(procs, p) })
	if err != nil {
		return err
	}
	b := &bench{c: c, dev: dev, home: home, rec: rec, srv: srv, runDir: runDir}
	if err := b.init(ctx); err != nil {
		return err
	}

	contenders := b.contenders()
	if c.only != "" {
		keep := strings.Split(c.only, ",")
		contenders = slices.DeleteFunc(contenders, func(k *contender) bool { return !slices.Contains(keep, k.key) })
		if len(contenders) == 0 {
			return fmt.Errorf("-only %s: no such contender", c.only)
		}
	}
	for r := range c.rounds {
		order := slices.Clone(contenders)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			var s sample
			for attempt := 0; ; attempt++ {
				rctx, cancel := context.WithTimeout(ctx, c.timeout)
				s, err = k.run(rctx)
				cancel()
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				if err != nil {
					return fmt.Errorf("round %d: %s: %w", r+1, k.label, err)
				}
				if !s.disturbed() || attempt == c.retries {
					break
				}
				k.reruns++
				fmt.Fprintf(stderr, "round %d/%d  %-30s disturbed: other processes took %.2f CPU s in %.2f s; again\n",
					r+1, c.rounds, k.label, s.otherCPU.Seconds(), s.wall.Seconds())
			}
			k.samples = append(k.samples, s)
			fmt.Fprintf(stderr, "round %d/%d  %-30s %6.1f MB/s  wall %5.2f s  CPU s: client %5.2f server %5.2f kernel %5.2f others %5.2f  then sync %5.2f s  (machine %2.0f%% busy before)\n",
				r+1, c.rounds, k.label, s.mbps(rec.bytes), s.wall.Seconds(), s.clientCPU.Seconds(), s.serverCPU.Seconds(),
				s.kernelCPU.Seconds(), s.otherCPU.Seconds(), s.syncAfter.Seconds(), 100*s.busyBefore)
		}
	}

	if c.only != "" || c.baseline != "" {
		return nil // a quick comparison: no profile, no report
	}
	fmt.Fprintf(stderr, "profiling one more sync in-process ...\n")
	prof, err := b.profile(ctx, filepath.Join(runDir, "sync-cpu.pprof"))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	// Keep the profile for `go tool pprof` after the run directory goes.
	if keep := filepath.Join(c.work, "sync-cpu.pprof"); os.Rename(prof.path, keep) == nil {
		prof.path = keep
		fmt.Fprintf(stderr, "CPU profile of the sync: go tool pprof -top %s\n", keep)
	}
	if keep := filepath.Join(c.work, "sync-device.perf"); os.Rename(filepath.Join(runDir, "sync-cpu.pprof.perf"), keep) == nil {
		fmt.Fprintf(stderr, "perf profile of attuned during one more sync: perf report -i %s\n", keep)
	}

	rep := report{
		when:       time.Now().UTC(),
		in:         in,
		rec:        rec,
		rounds:     c.rounds,
		contenders: contenders,
		prof:       prof,
		machine:    machineInfo(c, runDir, load),
		srv:        srv,
		tlsOurs:    b.tlsOurs,
		quiet:      c.quiet,
		retries:    c.retries,
	}
	fmt.Fprint(stdout, rep.table())
	fmt.Fprint(stdout, rep.breakdownTable())
	fmt.Fprint(stdout, rep.deviceTable())
	if c.out != "" {
		if err := updateDoc(c.out, rep.markdown()); err != nil {
			return err
		}
	}
	if c.readme != "" {
		return benchdoc.Fill(c.readme, readmeStart, readmeEnd, rep.readme())
	}
	return nil
}

// findTools resolves the external programs and says how to get a missing one.
func findTools(c *config) error {
	for _, p := range []*string{&c.attuned, &c.attune, &c.baseline} {
		if *p == "" {
			continue
		}
		if _, err := os.Stat(*p); err != nil {
			return fmt.Errorf("%s: %v; build it with `make build`", *p, err)
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if os.Geteuid() != 0 {
		return errors.New("the scp contender runs its own sshd, which needs root: run as root (or with sudo)")
	}
	for _, t := range []struct {
		dst      *string
		name, pk string
	}{
		{&c.ffmpeg, "ffmpeg", "ffmpeg"},
		{&c.ffprobe, "ffprobe", "ffmpeg"},
		{&c.sshd, "/usr/sbin/sshd", "openssh-server"},
		{&c.sshKeygen, "ssh-keygen", "openssh-client"},
		{&c.ssh, "ssh", "openssh-client"},
		{&c.scp, "scp", "openssh-client"},
		{&c.nginx, "/usr/sbin/nginx", "nginx"},
		{&c.curl, "curl", "curl"},
		{&c.sync, "sync", "coreutils"},
	} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			return fmt.Errorf("%s not found: install it (`apt-get install %s`, or `make bench`, which does)", t.name, t.pk)
		}
		*t.dst = p
	}
	// Debian's sshd_config serves SFTP (what scp speaks by default since
	// OpenSSH 9.0) with this helper; use it too.
	c.sftpServer = "internal-sftp"
	if _, err := os.Stat("/usr/lib/openssh/sftp-server"); err == nil {
		c.sftpServer = "/usr/lib/openssh/sftp-server"
	}
	c.goTool, _ = exec.LookPath("go") // optional: summarises the CPU profile
	c.perf, _ = exec.LookPath("perf") // optional: profiles the device's side
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	var a, b1, c string
	fmt.Sscan(string(b), &a, &b1, &c)
	return a + " " + b1 + " " + c
}
