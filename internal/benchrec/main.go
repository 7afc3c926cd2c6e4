//go:build linux

// Command benchrec is the recording benchmark: it records one minute of
// webcam-like MJPEG + PCM with `attuned record --pace none` and, side by
// side, with the obvious shell pipeline `ffmpeg -c copy | age`, and reports
// CPU time and peak memory per minute of input. With -attune it also times
// the review workspace's exports of that minute, sealed in a vault:
// `attune clip` of 30 s, lossless and as the family MP4, against ffmpeg
// cutting the plaintext file (-c copy, and libx264 with attune's own
// settings). `make bench` runs it and it rewrites its sections of
// docs/BENCHMARKS.md and its lines of the README's "How fast".
//
// Every number comes from the kernel's accounting of each process (wait4
// rusage: user+sys time and ru_maxrss), so both sides are measured the same
// way and nothing of the benchmark itself is counted. It is Linux-only:
// ru_maxrss is in kilobytes there, and the device runs Linux.
//
//	go run ./internal/benchrec -attuned bin/attuned -out docs/BENCHMARKS.md [-rounds 5] [-gobench FILE]
package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"attune.dev/attune/internal/benchdoc"
)

// Goals the design sets for `attuned record` on this benchmark.
const (
	goalCPURatio = 0.5 // attuned CPU / pipeline CPU, at most
	goalRSSMB    = 40  // attuned peak RSS, below
)

const (
	startMarker = "<!-- benchrec:start -->"
	endMarker   = "<!-- benchrec:end -->"
)

// Input parameters. The cache file name carries them, so changing them
// regenerates the input.
const (
	inWidth, inHeight, inFPS = 1280, 720, 30
	inQuality                = 4 // ffmpeg -q:v: webcam-like JPEG sizes (~55 KB a frame)
)

type config struct {
	attuned string
	attune  string // for the exports; empty skips them
	out     string
	readme  string
	rounds  int
	seconds int
	work    string
	outdir  string
	load    string // /proc/loadavg at the start
	gobench string
	ffmpeg  string
	ffprobe string
	age     string // the stock X25519 age CLI (Debian's 1.1)
	age13   string // optional: age >= 1.3 (.tools/bin/age)
	timeout time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.attuned, "attuned", "bin/attuned", "the attuned binary to measure (`make build` makes it)")
	flag.StringVar(&c.attune, "attune", "", "the attune binary: also measure `attune clip` against ffmpeg (empty: skip)")
	flag.StringVar(&c.readme, "readme", "", "README whose figures between the benchrec:readme markers to replace (empty: leave it)")
	flag.StringVar(&c.out, "out", "", "markdown file whose benchrec section to create or replace (empty: stdout only)")
	flag.IntVar(&c.rounds, "rounds", 5, "rounds; each runs every contender once, in alternating order")
	flag.IntVar(&c.seconds, "seconds", 60, "length of the generated input, in seconds")
	flag.StringVar(&c.work, "work", filepath.Join(os.TempDir(), "attune-bench"), "work directory; the generated input is cached here")
	flag.StringVar(&c.outdir, "outdir", "", "where the recordings and out.age are written, on the filesystem to measure (default: -work)")
	flag.StringVar(&c.gobench, "gobench", "", "optional `go test -bench` output to include in the report (- for stdin)")
	flag.StringVar(&c.ffmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary")
	flag.StringVar(&c.ffprobe, "ffprobe", "ffprobe", "ffprobe binary")
	flag.StringVar(&c.age, "age", "/usr/bin/age", "age CLI for the pipeline (the distribution's, X25519)")
	flag.StringVar(&c.age13, "age13", ".tools/bin/age", "a second age CLI (v1.3, `make tools`) measured separately if present; empty to skip")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit for any one run")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go run ./internal/benchrec -attuned bin/attuned [-out docs/BENCHMARKS.md] [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	// Ctrl-C stops the run in progress (exec kills it) and lets the
	// per-run directories be removed on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrec:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, stdout, stderr io.Writer) error {
	if c.rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if c.seconds < 5 {
		return errors.New("-seconds must be at least 5")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			c.load = strings.Join(f[:3], " ")
		}
	}
	if err := findTools(&c, stderr); err != nil {
		return err
	}
	var gobench string
	if c.gobench != "" {
		b, err := readFileOrStdin(c.gobench)
		if err != nil {
			return fmt.Errorf("-gobench: %v", err)
		}
		gobench = string(b)
	}
	if c.outdir == "" {
		c.outdir = c.work
	}
	for _, d := range []string{c.work, c.outdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	in, err := makeInput(ctx, c, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "input: %s: %.1f MB, %.1f s, %.1f Mbit/s\n", in.path, float64(in.size)/1e6, in.seconds, in.bitrate()/1e6)
	if err := warm(in.path); err != nil {
		return err
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	rcptFile := filepath.Join(c.work, "recipients.txt")
	if err := os.WriteFile(rcptFile, []byte(id.Recipient().String()+"\n"), 0o644); err != nil {
		return err
	}
	b := &bench{c: c, in: in, id: id, rcptFile: rcptFile}

	contenders := []*contender{{
		label:   "attuned record",
		command: fmt.Sprintf("attuned record --data DIR --recipients recipients.txt --source file:%s --pace none", filepath.Base(in.path)),
		run:     b.runOurs,
	}, {
		label:   "ffmpeg | age " + toolVersion(c.age, "--version"),
		command: fmt.Sprintf("ffmpeg -v error -i %s -c copy -f matroska - | %s -r age1… > out.age", filepath.Base(in.path), c.age),
		run:     func(ctx context.Context, verify bool) (sample, error) { return b.runPipeline(ctx, c.age, verify) },
	}}
	if c.age13 != "" {
		contenders = append(contenders, &contender{
			label:   "ffmpeg | age " + toolVersion(c.age13, "--version"),
			command: fmt.Sprintf("ffmpeg -v error -i %s -c copy -f matroska - | %s -r age1… > out.age", filepath.Base(in.path), c.age13),
			run:     func(ctx context.Context, verify bool) (sample, error) { return b.runPipeline(ctx, c.age13, verify) },
		})
	}

	// One untimed run of each first checks the outputs are real
	// recordings, and warms the caches.
	if err := runRounds(ctx, c, contenders, stderr); err != nil {
		return err
	}

	var ex *exportsReport
	if c.attune != "" {
		dir, err := os.MkdirTemp(c.outdir, "exports-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		e, err := setupExports(ctx, c, in, dir)
		if err != nil {
			return fmt.Errorf("exports: %w", err)
		}
		ks, err := e.contenders()
		if err != nil {
			return err
		}
		if err := runRounds(ctx, c, ks, stderr); err != nil {
			return fmt.Errorf("exports: %w", err)
		}
		ex = &exportsReport{when: time.Now().UTC(), in: in, rounds: c.rounds, contenders: ks, load: c.load}
	}

	rep := report{
		when:       time.Now().UTC(),
		in:         in,
		rounds:     c.rounds,
		contenders: contenders,
		machine:    machineInfo(c),
		gobench:    gobench,
	}
	fmt.Fprint(stdout, rep.table())
	if ex != nil {
		fmt.Fprint(stdout, ex.table())
	}
	if c.out != "" {
		if err := updateDoc(c.out, rep.markdown()); err != nil {
			return err
		}
		if ex != nil {
			if err := benchdoc.Update(c.out, exportsStart, exportsEnd, ex.markdown()); err != nil {
				return err
			}
		}
	}
	if c.readme != "" {
		return benchdoc.Fill(c.readme, readmeStart, readmeEnd, readme(rep, ex))
	}
	return nil
}

// findTools resolves the external programs and says how to get a missing one.
func findTools(c *config, stderr io.Writer) error {
	if _, err := os.Stat(c.attuned); err != nil {
		return fmt.Errorf("attuned binary %s: %v; build it with `make build`", c.attuned, err)
	}
	if c.attune != "" {
		if _, err := os.Stat(c.attune); err != nil {
			return fmt.Errorf("attune binary %s: %v; build it with `make build`", c.attune, err)
		}
	}
	for _, p := range []*string{&c.ffmpeg, &c.ffprobe} {
		path, err := exec.LookPath(*p)
		if err != nil {
			return fmt.Errorf("%s not found: install it (`apt-get install ffmpeg`, or `make deps`)", *p)
		}
		*p = path
	}
	path, err := exec.LookPath(c.age)
	if err != nil {
		return fmt.Errorf("age CLI %s not found: install it (`apt-get install age`, or `make deps`)", c.age)
	}
	c.age = path
	if c.age13 != "" {
		if path, err := exec.LookPath(c.age13); err == nil {
			c.age13 = path
		} else {
			fmt.Fprintf(stderr, "benchrec: %s not found (`make tools` installs age v1.3); measuring one age CLI only\n", c.age13)
			c.age13 = ""
		}
	}
	return nil
}

func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// input is the generated recording that both sides read.
type input struct {
	path    string
	size    int64
	seconds float64
	gen     string // the ffmpeg command that made it
}

func (in input) bitrate() float64 { return float64(in.size) * 8 / in.seconds }

// makeInput generates the input once and reuses it from the work directory.
func makeInput(ctx context.Context, c config, stderr io.Writer) (input, error) {
	name := fmt.Sprintf("in-%dx%d-%dfps-q%d-%ds.mkv", inWidth, inHeight, inFPS, inQuality, c.seconds)
	path := filepath.Join(c.work, name)
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", inWidth, inHeight, inFPS),
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", strconv.Itoa(c.seconds),
		"-c:v", "mjpeg", "-q:v", strconv.Itoa(inQuality), "-pix_fmt", "yuvj420p", "-c:a", "pcm_s16le", "-ac", "1"}
	in := input{path: path, gen: "ffmpeg " + strings.Join(args, " ") + " " + name}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "generating %s (%d s of %dx%d MJPEG + PCM) ...\n", path, c.seconds, inWidth, inHeight)
		tmp := path + ".tmp"
		cmd := exec.CommandContext(ctx, c.ffmpeg, append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), "-f", "matroska", tmp)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			os.Remove(tmp)
			return in, fmt.Errorf("generate input: ffmpeg: %v: %s", err, strings.TrimSpace(errb.String()))
		}
		if err := os.Rename(tmp, path); err != nil {
			return in, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return in, err
	}
	in.size = fi.Size()
	in.seconds, err = probeDuration(ctx, c.ffprobe, path)
	if err != nil {
		return in, fmt.Errorf("input %s: %v (delete it to regenerate)", path, err)
	}
	if in.seconds < float64(c.seconds)*0.95 {
		return in, fmt.Errorf("input %s lasts %.1f s, want %d s (delete it to regenerate)", path, in.seconds, c.seconds)
	}
	return in, nil
}

func probeDuration(ctx context.Context, ffprobe, path string) (float64, error) {
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe: %v", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("ffprobe: no duration (%q)", strings.TrimSpace(string(out)))
	}
	return d, nil
}

// warm reads the input once so every run finds it in the page cache.
func warm(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// proc is the kernel's accounting of one finished process.
type proc struct {
	name      string
	user, sys time.Duration
	maxRSSKB  int64
}

// procOf accounts for a finished process. CPU times are its own (wait4).
// Its peak RSS needs care: Linux starts a process's ru_maxrss at the
// high-water RSS of the memory it replaced at exec, and Go starts children
// with vfork, so that is this benchmark's own peak RSS (tens of MB after the
// check run). ru_maxrss is therefore the child's own peak only when it
// exceeds ours; otherwise the peak comes from polling the child's VmHWM,
// which counts its own memory only.
func procOf(name string, ps *os.ProcessState, polledKB, parentKB int64) proc {
	p := proc{name: name, user: ps.UserTime(), sys: ps.SystemTime(), maxRSSKB: polledKB}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		switch {
		case ru.Maxrss > parentKB && ru.Maxrss > polledKB:
			p.maxRSSKB = ru.Maxrss // kilobytes on Linux
		case polledKB == 0:
			p.maxRSSKB = ru.Maxrss // exited before the first poll: an upper bound
		}
	}
	return p
}

// vmHWM is the peak resident set ("VmHWM", kB) of a running process from
// /proc/PID/status, or 0 if it has exited.
func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// watchHWM polls a started process's VmHWM every few milliseconds until
// stop is closed, and returns the largest value seen on the channel.
func watchHWM(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	id := strconv.Itoa(pid)
	go func() {
		peak := vmHWM(id)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
				// Once the process has released its memory, stop: its
				// pid may be reused after it is reaped.
				if n := vmHWM(id); n > 0 {
					peak = max(peak, n)
				} else if peak > 0 {
					<-stop
					out <- peak
					return
				}
			}
		}
	}()
	return out
}

// sample is one run of one contender.
type sample struct {
	wall     time.Duration
	procs    []proc
	outBytes int64
}

func (s sample) cpu() time.Duration {
	var t time.Duration
	for _, p := range s.procs {
		t += p.user + p.sys
	}
	return t
}

func (s sample) rssSumKB() int64 {
	var n int64
	for _, p := range s.procs {
		n += p.maxRSSKB
	}
	return n
}

func (s sample) rssMaxKB() int64 {
	var n int64
	for _, p := range s.procs {
		n = max(n, p.maxRSSKB)
	}
	return n
}

type contender struct {
	label   string
	command string
	run     func(ctx context.Context, verify bool) (sample, error)
	samples []sample
}

type bench struct {
	c        config
	in       input
	id       *age.X25519Identity
	rcptFile string
}

// runOurs records the input with attuned into a fresh data directory,
// checks the recording and removes it.
func (b *bench) runOurs(ctx context.Context, verify bool) (sample, error) {
	data, err := os.MkdirTemp(b.c.outdir, "data-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(data)
	cmd := exec.CommandContext(ctx, b.c.attuned, "record", "--data", data, "--recipients", b.rcptFile,
		"--source", "file:"+b.in.path, "--pace", "none")
	var out bytes.Buffer
	cmd.Stdout = &out
	s, err := runStages(cmd)
	if err != nil {
		return s, err
	}

	id := strings.TrimSpace(out.String())
	dir := filepath.Join(data, "recordings", id)
	segs, err := checkIndex(dir, minSegments(b.in.seconds))
	if err != nil {
		return s, fmt.Errorf("recording %q: %v", id, err)
	}
	for _, seg := range segs {
		s.outBytes += seg.Size
	}
	if verify {
		n, err := b.decryptSegments(dir, segs)
		if err != nil {
			return s, fmt.Errorf("recording %s: %v", id, err)
		}
		if err := within(n, b.in.size, 0.05); err != nil {
			return s, fmt.Errorf("recording %s decrypts to %d bytes: %v", id, n, err)
		}
	}
	return s, nil
}

// minSegments is how many ~1 s segments a whole recording of the input
// must have at least: 55 for a minute.
func minSegments(seconds float64) int { return int(seconds * 55 / 60) }

type segInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// checkIndex reads a recording's index.json and requires it complete with
// at least min segments.
func checkIndex(dir string, min int) ([]segInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var ix struct {
		State    string    `json:"state"`
		Segments []segInfo `json:"segments"`
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("index.json: %v", err)
	}
	if ix.State != "complete" {
		return nil, fmt.Errorf("index.json: state %q, want complete", ix.State)
	}
	if len(ix.Segments) < min {
		return nil, fmt.Errorf("index.json: %d segments, want at least %d", len(ix.Segments), min)
	}
	return ix.Segments, nil
}

// decryptSegments decrypts every segment with the key, checks that the
// plaintext is one Matroska stream as long as the input (ffprobe) and
// returns its size.
func (b *bench) decryptSegments(dir string, segs []segInfo) (int64, error) {
	plain := filepath.Join(b.c.work, "ours-plain.mkv")
	defer os.Remove(plain)
	f, err := os.Create(plain)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	for _, seg := range segs {
		m, err := decryptFile(filepath.Join(dir, seg.Name), b.id, f)
		if err != nil {
			return n, fmt.Errorf("%s: %v", seg.Name, err)
		}
		n += m
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	d, err := probeDuration(context.Background(), b.c.ffprobe, plain)
	if err != nil {
		return n, fmt.Errorf("decrypted stream: %v", err)
	}
	if d < b.in.seconds-1.5 {
		return n, fmt.Errorf("decrypted stream lasts %.2f s, the input %.2f s", d, b.in.seconds)
	}
	return n, nil
}

func decryptFile(path string, id age.Identity, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := age.Decrypt(bufio.NewReaderSize(f, 1<<20), id)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, r)
}

func within(got, want int64, frac float64) error {
	if d := float64(got-want) / float64(want); d > frac || d < -frac {
		return fmt.Errorf("%+.1f%% from the input's %d bytes (allowed ±%.0f%%)", d*100, want, frac*100)
	}
	return nil
}

// runPipeline runs `ffmpeg -c copy -f matroska - | age -r R > out.age`
// as two processes joined by a pipe, so each one's rusage is its own.
func (b *bench) runPipeline(ctx context.Context, ageBin string, verify bool) (sample, error) {
	outPath := filepath.Join(b.c.outdir, "out.age")
	defer os.Remove(outPath)
	out, err := os.Create(outPath)
	if err != nil {
		return sample{}, err
	}
	defer out.Close()
	ff := exec.CommandContext(ctx, b.c.ffmpeg, "-v", "error", "-i", b.in.path, "-c", "copy", "-f", "matroska", "-")
	ag := exec.CommandContext(ctx, ageBin, "-r", b.id.Recipient().String())
	ag.Stdout = out
	s, err := runStages(ff, ag)
	if err != nil {
		return s, err
	}
	fi, err := out.Stat()
	if err != nil {
		return s, err
	}
	s.outBytes = fi.Size()
	if s.outBytes == 0 {
		return s, errors.New("out.age is empty")
	}
	if verify {
		n, err := decryptFile(outPath, b.id, io.Discard)
		if err != nil {
			return s, fmt.Errorf("out.age does not decrypt: %v", err)
		}
		if err := within(n, b.in.size, 0.05); err != nil {
			return s, fmt.Errorf("out.age decrypts to %d bytes: %v", n, err)
		}
	}
	return s, nil
}

// runStages runs cmds as a shell pipeline, each one's stdout into the
// next one's stdin (the caller sets the last one's stdout), and accounts
// for each process separately. A failure is reported with the stderr of
// the stage that failed.
func runStages(cmds ...*exec.Cmd) (sample, error) {
	errs := make([]*bytes.Buffer, len(cmds))
	var parentEnds []*os.File // pipe ends the children inherit; closed once they run
	defer func() {
		for _, f := range parentEnds {
			f.Close()
		}
	}()
	for i, c := range cmds {
		errs[i] = new(bytes.Buffer)
		c.Stderr = errs[i]
		if i == len(cmds)-1 {
			break
		}
		r, w, err := os.Pipe()
		if err != nil {
			return sample{}, err
		}
		c.Stdout, cmds[i+1].Stdin = w, r
		parentEnds = append(parentEnds, r, w)
	}
	stop := make(chan struct{})
	var peaks []<-chan int64
	start := time.Now()
	var startErr error
	for _, c := range cmds {
		if startErr = c.Start(); startErr != nil {
			break
		}
		// Start returns once the exec has happened: from now on
		// /proc/PID/status describes the child's own memory.
		peaks = append(peaks, watchHWM(c.Process.Pid, stop))
	}
	// Only the children may hold the pipes now, so a stage sees EOF (or
	// EPIPE) when its neighbour exits.
	for _, f := range parentEnds {
		f.Close()
	}
	parentEnds = nil
	var failed []string
	for i, c := range cmds[:len(peaks)] {
		if err := c.Wait(); err != nil {
			// Later stages first: an upstream stage usually fails
			// only because its reader did (broken pipe).
			failed = slices.Insert(failed, 0, fmt.Sprintf("%s: %v: %s", filepath.Base(c.Path), err, strings.TrimSpace(errs[i].String())))
		}
	}
	var waitErr error
	if len(failed) > 0 {
		waitErr = errors.New(strings.Join(failed, "; "))
	}
	s := sample{wall: time.Since(start)}
	close(stop)
	polled := make([]int64, len(peaks))
	for i, ch := range peaks {
		polled[i] = <-ch
	}
	if startErr != nil {
		return s, startErr
	}
	if waitErr != nil {
		return s, waitErr
	}
	self := vmHWM("self")
	for i, c := range cmds {
		s.procs = append(s.procs, procOf(filepath.Base(c.Path), c.ProcessState, polled[i], self))
	}
	return s, nil
}

// machine describes where the numbers were taken.
type machine struct {
	cpu     string
	nproc   int
	kernel  string
	goBuilt string // Go that built attuned
	outFS   string // filesystem the outputs were written to
	load    string // load average when the benchmark started
	ffmpeg  string
	ages    []string
}

func machineInfo(c config) machine {
	m := machine{cpu: benchdoc.CPUModel(), nproc: runtime.NumCPU(), goBuilt: "unknown", outFS: benchdoc.Filesystem(c.outdir), load: c.load}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if bi, err := buildinfo.ReadFile(c.attuned); err == nil {
		m.goBuilt = bi.GoVersion
	}
	m.ffmpeg, _, _ = strings.Cut(toolVersion(c.ffmpeg, "-version"), " Copyright")
	for _, a := range []string{c.age, c.age13} {
		if a != "" {
			m.ages = append(m.ages, a+" "+toolVersion(a, "--version"))
		}
	}
	return m
}

// toolVersion is the first line a tool prints for its version flag.
func toolVersion(bin, flag string) string {
	out, err := exec.Command(bin, flag).Output()
	if err != nil {
		return "(version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

func kbToMB(kb int64) float64 { return float64(kb) / 1024 }

// over applies f to every sample.
func over(ss []sample, f func(sample) float64) benchdoc.Summary {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return benchdoc.Summarize(xs)
}

type report struct {
	when       time.Time
	in         input
	rounds     int
	contenders []*contender
	machine    machine
	gobench    string
}

func (r report) perMin(d time.Duration) float64 { return d.Seconds() / (r.in.seconds / 60) }

func (r report) cpu(k *contender) benchdoc.Summary {
	return over(k.samples, func(s sample) float64 { return r.perMin(s.cpu()) })
}

func rss(k *contender) benchdoc.Summary {
	return over(k.samples, func(s sample) float64 { return kbToMB(s.rssSumKB()) })
}

func rssMax(k *contender) benchdoc.Summary {
	return over(k.samples, func(s sample) float64 { return kbToMB(s.rssMaxKB()) })
}

func wall(k *contender) benchdoc.Summary {
	return over(k.samples, func(s sample) float64 { return s.wall.Seconds() })
}

// table is the main result, in Markdown (also what stdout shows).
func (r report) table() string {
	var b strings.Builder
	b.WriteString("| | CPU s per min of input | peak RSS MB, all processes | largest process MB | wall s | × realtime | output MB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range r.contenders {
		w := wall(k)
		out := over(k.samples, func(s sample) float64 { return float64(s.outBytes) / 1e6 })
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %s | %.0f | %.1f |\n",
			cell(k.label), r.cpu(k).Format(2), rss(k).Format(1), rssMax(k).Med, w.Format(2), r.in.seconds/w.Med, out.Med)
	}
	b.WriteString("\n")
	b.WriteString(r.goals())
	return b.String()
}

// ratios compares attuned (the first contender) with the stock pipeline
// (the second): CPU and RSS medians, ours/theirs.
func (r report) ratios() (cpuRatio, rssRatio, oursRSS float64) {
	ours, theirs := r.contenders[0], r.contenders[1]
	return r.cpu(ours).Med / r.cpu(theirs).Med, rss(ours).Med / rss(theirs).Med, rss(ours).Med
}

// cell escapes the pipe in "ffmpeg | age" for a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r report) goals() string {
	cpuRatio, rssRatio, oursRSS := r.ratios()
	theirs := r.contenders[1].label
	return fmt.Sprintf("attuned / `%s`: CPU ×%.2f (goal ≤ %.1f: %s), peak RSS ×%.2f; attuned peak RSS %.1f MB (goal < %d MB: %s).\n",
		theirs, cpuRatio, goalCPURatio, verdict(cpuRatio <= goalCPURatio), rssRatio,
		oursRSS, goalRSSMB, verdict(oursRSS < goalRSSMB))
}

// processes breaks each contender down by process.
func (r report) processes() string {
	var b strings.Builder
	b.WriteString("| run | process | user s/min | sys s/min | peak RSS MB |\n")
	b.WriteString("|---|---|---:|---:|---:|\n")
	for _, k := range r.contenders {
		for i, p := range k.samples[0].procs {
			user := over(k.samples, func(s sample) float64 { return r.perMin(s.procs[i].user) })
			sys := over(k.samples, func(s sample) float64 { return r.perMin(s.procs[i].sys) })
			mem := over(k.samples, func(s sample) float64 { return kbToMB(s.procs[i].maxRSSKB) })
			fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %.1f |\n", cell(k.label), p.name, user.Med, sys.Med, mem.Med)
		}
	}
	return b.String()
}

// interpretation is the paragraph under the table, written from the numbers.
func (r report) interpretation() string {
	ours, theirs := r.contenders[0], r.contenders[1]
	cpuRatio, rssRatio, oursRSS := r.ratios()
	var ageCPU, ffCPU float64
	for i, p := range theirs.samples[0].procs {
		v := over(theirs.samples, func(s sample) float64 { return r.perMin(s.procs[i].user + s.procs[i].sys) }).Med
		if strings.HasPrefix(p.name, "age") {
			ageCPU += v
		} else {
			ffCPU += v
		}
	}
	oursCPU := r.cpu(ours).Med
	var b strings.Builder
	fmt.Fprintf(&b, "Both sides read the %.0f MB file, rewrite it as one Matroska stream without touching the JPEGs "+
		"and encrypt it with age to one X25519 recipient. "+
		"`attuned record` takes %.2f CPU s per minute of footage (%.1f%% of one core while recording in real time), "+
		"%.2f× the pipeline's %.2f s, of which ffmpeg's remux is %.2f s and age's encryption %.2f s; ",
		float64(r.in.size)/1e6, oursCPU, oursCPU/60*100, cpuRatio, r.cpu(theirs).Med, ffCPU, ageCPU)
	if cpuRatio <= goalCPURatio {
		fmt.Fprintf(&b, "that meets the goal of %.1f×. ", goalCPURatio)
	} else {
		fmt.Fprintf(&b, "that misses the goal of %.1f×, a budget of %.2f s, little more than the %.2f s age alone costs the pipeline. ",
			goalCPURatio, goalCPURatio*r.cpu(theirs).Med, ageCPU)
	}
	b.WriteString("attuned does work the pipeline does not: it seals a separate age file every second, " +
		"fsyncs it, renames it into place, fsyncs the directory (and every 10 s index.json), and hashes every ciphertext byte with SHA-256 for that index, " +
		"so a power cut loses at most a second. Its fsyncs also make it write its pages to disk itself, " +
		"which the rusage figures count, while the pipeline's dirty pages are written back later by kernel threads that no figure here counts. ")
	fmt.Fprintf(&b, "attuned's peak RSS is %.1f MB, %.2f× the pipeline's processes together (%.1f MB), ",
		oursRSS, rssRatio, rss(theirs).Med)
	if oursRSS < goalRSSMB {
		fmt.Fprintf(&b, "within the %d MB goal. ", goalRSSMB)
	} else {
		fmt.Fprintf(&b, "over the %d MB goal. ", goalRSSMB)
	}
	b.WriteString("Wall times depend mostly on the disk; on the device the camera paces the recording, so CPU and memory are what matter there.\n")
	return b.String()
}

// markdown is the whole section, markers included.
func (r report) markdown() string {
	var b strings.Builder
	b.WriteString(startMarker + "\n")
	b.WriteString("## Recording: `attuned record` against `ffmpeg | age`\n\n")
	fmt.Fprintf(&b, "_Written by `make bench` (`internal/benchrec`) on %s; everything between the benchrec markers is replaced on each run._\n\n",
		r.when.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Input: %.0f s of %dx%d %d fps MJPEG (`-q:v %d`, about %.0f KB a frame) and 48 kHz mono 16-bit PCM in Matroska: "+
		"%.1f MB, %.1f Mbit/s. %s, the contenders alternating; median (min–max), CPU per minute of input.\n\n",
		r.in.seconds, inWidth, inHeight, inFPS, inQuality, (float64(r.in.size)/r.in.seconds-48000*2)/inFPS/1e3,
		float64(r.in.size)/1e6, r.in.bitrate()/1e6, plural(r.rounds, "round"))
	b.WriteString(r.table())
	b.WriteString("\n")
	b.WriteString(r.interpretation())
	b.WriteString("\n### By process (medians)\n\n")
	b.WriteString(r.processes())
	b.WriteString("\nCPU is the user + system time of each process from the kernel (`wait4`), summed over the pipeline's stages, " +
		"which run as separate processes joined by a pipe. Peak RSS is each process's own high-water mark: `ru_maxrss`, " +
		"or where that only repeats the benchmark's own peak (Linux starts a vforked child's `ru_maxrss` at its parent's), " +
		"`VmHWM` polled every 5 ms; the pipeline's figure is the sum of its stages' peaks. MB are 2^20 bytes; output is the ciphertext written. " +
		"An untimed first run of each contender checked its output: attuned's `index.json` says `complete` with about one segment a second " +
		"and its segments decrypt (Go age) to one stream that ffprobe reads as long as the input; `out.age` decrypts to within 5% of the input's size.\n")

	b.WriteString("\n### Machine\n\n")
	m := r.machine
	fmt.Fprintf(&b, "- CPU: %s, %d logical CPUs (nproc)\n", m.cpu, m.nproc)
	if m.kernel != "" {
		fmt.Fprintf(&b, "- Linux %s; load average %s at the start\n", m.kernel, m.load)
	}
	fmt.Fprintf(&b, "- outputs written to %s\n", m.outFS)
	fmt.Fprintf(&b, "- attuned built with %s\n", m.goBuilt)
	fmt.Fprintf(&b, "- %s\n", m.ffmpeg)
	for _, a := range m.ages {
		fmt.Fprintf(&b, "- age: %s\n", a)
	}

	b.WriteString("\n### Commands\n\n```sh\n")
	fmt.Fprintf(&b, "%s   # once, cached\n", r.in.gen)
	for _, k := range r.contenders {
		fmt.Fprintf(&b, "%s\n", k.command)
	}
	b.WriteString("```\n")

	if strings.TrimSpace(r.gobench) != "" {
		b.WriteString("\n### In-process Go benchmarks\n\n`go test -bench` output (as `make bench` runs it: `go test -run '^$' -bench . -benchmem ./capture/ ./storage/ ./laptop/ ./system/`):\n\n```text\n")
		b.WriteString(strings.TrimSpace(r.gobench))
		b.WriteString("\n```\n")
	}
	b.WriteString(endMarker + "\n")
	return b.String()
}

// updateDoc creates path or replaces its benchrec section, keeping the rest.
func updateDoc(path, section string) error {
	return benchdoc.Update(path, startMarker, endMarker, section)
}

// replaceSection puts section (markers included) in place of the one in doc.
func replaceSection(doc, section string) (string, error) {
	return benchdoc.Replace(doc, startMarker, endMarker, section)
}
