//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// profileResult is one in-process run of the sync code `attune sync` runs
// (laptop.Home.Sync over link.Client), with a CPU profile and the time
// spent in the device calls.
type profileResult struct {
	path string // the CPU profile
	wall time.Duration
	cpu  time.Duration // this process's user+sys during the sync

	// Inside calls to the device API (timed around link.Client), summed
	// over the download streams, which overlap.
	list     time.Duration // SetClock, Recordings
	open     time.Duration // OpenSegment: from the request to the response's headers
	download time.Duration // inside the segment bodies' Read: network and TLS decryption
	manifest time.Duration
	ack      time.Duration // Ack calls, beside the downloads
	// From the first segment request to the last byte of the last segment.
	phase   time.Duration
	streams int

	// The checks and fsyncs timed alone over the vault afterwards (files
	// in the page cache), whatever order sync does them in.
	hash    time.Duration // SHA-256 of every segment
	unwrap  time.Duration // age headers: ML-KEM-768 + X25519 file-key unwrap
	decrypt time.Duration // age payloads: ChaCha20-Poly1305
	// Writing each segment again to a new file, as sync does, timing its
	// fsync and the directory's.
	fsync, dirSync time.Duration

	top      []pprofLine // go tool pprof -top -cum, selected frames
	topText  string      // go tool pprof -top (flat), first lines
	samplesS float64     // profile samples, s

	// The device's side, from perf (when installed).
	serverCPU time.Duration
	device    []pprofLine // CPU s in selected frames
	perfNote  string      // why there is no device profile
}

type pprofLine struct {
	what string
	cum  float64 // s
}

// apiTimer wraps the device client and accounts for time spent in it,
// from every goroutine sync calls it from.
type apiTimer struct {
	api   laptop.DeviceAPI
	r     *profileResult
	mu    sync.Mutex
	first time.Time // the first segment request
	last  time.Time // the end of the last segment read
}

func (t *apiTimer) done(d *time.Duration, start time.Time) {
	t.mu.Lock()
	*d += time.Since(start)
	t.mu.Unlock()
}

func (t *apiTimer) OpenSegment(ctx context.Context, id string, n int, offset int64) (io.ReadCloser, error) {
	start := time.Now()
	t.mu.Lock()
	if t.first.IsZero() {
		t.first = start
	}
	t.mu.Unlock()
	body, err := t.api.OpenSegment(ctx, id, n, offset)
	t.done(&t.r.open, start)
	if err != nil {
		return nil, err
	}
	return &timedReader{body, t}, nil
}

// timedReader accounts for the time spent waiting for a segment's bytes.
type timedReader struct {
	io.ReadCloser
	t *apiTimer
}

func (r *timedReader) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := r.ReadCloser.Read(p)
	end := time.Now()
	r.t.mu.Lock()
	r.t.r.download += end.Sub(start)
	r.t.last = end
	r.t.mu.Unlock()
	return n, err
}

func (t *apiTimer) SetClock(ctx context.Context, now time.Time) (link.ClockStatus, error) {
	defer t.done(&t.r.list, time.Now())
	return t.api.SetClock(ctx, now)
}

func (t *apiTimer) Recordings(ctx context.Context) ([]*storage.Index, error) {
	defer t.done(&t.r.list, time.Now())
	return t.api.Recordings(ctx)
}

func (t *apiTimer) Manifest(ctx context.Context, id string, w io.Writer) (int64, error) {
	defer t.done(&t.r.manifest, time.Now())
	return t.api.Manifest(ctx, id, w)
}

func (t *apiTimer) Ack(ctx context.Context, id string, segments []int, manifest bool) (*storage.Index, error) {
	defer t.done(&t.r.ack, time.Now())
	return t.api.Ack(ctx, id, segments, manifest)
}

func (t *apiTimer) Audit(ctx context.Context, after uint64) ([]byte, error) {
	defer t.done(&t.r.list, time.Now())
	return t.api.Audit(ctx, after)
}

// profile syncs the restored recording once more, in this process, with
// the CPU profiler on and the device client timed, then times the
// verification and fsync steps alone; then once more with perf sampling
// the device (perf slows attuned down, so not during the timed run).
func (b *bench) profile(ctx context.Context, path string) (*profileResult, error) {
	r := &profileResult{path: path}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var start, end time.Time
	var api *apiTimer
	err = b.syncInProcess(ctx, func(client laptop.DeviceAPI) error {
		api = &apiTimer{api: client, r: r}
		scpu0, _ := serverCPU(b.dev.proc.pid())
		cpu0 := selfCPU()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		start = time.Now()
		res, err := b.h.Sync(ctx, api, b.ldev, laptop.SyncOptions{})
		end = time.Now()
		pprof.StopCPUProfile()
		r.cpu = selfCPU() - cpu0
		scpu1, _ := serverCPU(b.dev.proc.pid())
		r.serverCPU = scpu1 - scpu0
		if err := checkResult(res, err); err != nil {
			return err
		}
		if err := b.verifyDir(b.vault); err != nil {
			return fmt.Errorf("vault: %v", err)
		}
		r.wall = end.Sub(start)
		r.phase = api.last.Sub(api.first)
		r.streams = laptop.DownloadStreams
		if err := b.timeVerification(r); err != nil {
			return err
		}
		return b.timeFsync(r)
	})
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if b.c.goTool != "" {
		if err := r.readProfile(ctx, b.c.goTool); err != nil {
			return nil, err
		}
	}
	if err := b.profileDevice(ctx, r, path+".perf"); err != nil {
		r.perfNote = err.Error()
	}
	return r, nil
}

// syncInProcess restores the device's recording, empties the vault, waits
// for a quiet machine and calls fn with a fresh link client; the vault is
// emptied again afterwards.
func (b *bench) syncInProcess(ctx context.Context, fn func(laptop.DeviceAPI) error) error {
	if err := b.dev.restore(ctx, b.rec); err != nil {
		return err
	}
	if err := b.emptyVault(); err != nil {
		return err
	}
	defer b.emptyVault()
	client, err := link.NewClient(&net.Dialer{Timeout: 10 * time.Second}, b.dev.link, b.cert, b.ldev.Pin)
	if err != nil {
		return err
	}
	defer client.Close()
	syscall.Sync()
	if _, err := waitQuiet(ctx, b.c.quiet, runtime.NumCPU()); err != nil {
		return err
	}
	return fn(client)
}

// checkResult requires a sync that completed the one recording.
func checkResult(res *laptop.SyncResult, err error) error {
	if err != nil {
		return err
	}
	if len(res.Recordings) != 1 || !res.Recordings[0].Complete || res.Problems() > 0 {
		return fmt.Errorf("in-process sync incomplete: %+v", res.Recordings)
	}
	return nil
}

// profileDevice syncs once more with perf sampling attuned, and gives
// the CPU time of the timed run (r.serverCPU) by perf's shares.
func (b *bench) profileDevice(ctx context.Context, r *profileResult, data string) error {
	return b.syncInProcess(ctx, func(client laptop.DeviceAPI) error {
		perf, err := b.startPerf(data)
		if err != nil {
			return err
		}
		defer perf.stop()
		if err := checkResult(b.h.Sync(ctx, client, b.ldev, laptop.SyncOptions{})); err != nil {
			return err
		}
		perf.stop()
		r.device, err = readPerf(ctx, b.c.perf, data, r.serverCPU)
		return err
	})
}

// timeVerification repeats, over the vault's segments, what sync does to
// verify each as it arrives: SHA-256 of the bytes, then a full age
// decryption of them in memory (age.DecryptReaderAt).
func (b *bench) timeVerification(r *profileResult) error {
	for _, s := range b.rec.index.Segments {
		path := filepath.Join(b.vault, s.Name)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		start := time.Now()
		sum := sha256.Sum256(data)
		r.hash += time.Since(start)
		if hex.EncodeToString(sum[:]) != s.SHA256 {
			return fmt.Errorf("%s: hash mismatch", path)
		}
		start = time.Now()
		dr, size, err := age.DecryptReaderAt(bytes.NewReader(data), int64(len(data)), b.ident)
		r.unwrap += time.Since(start)
		if err == nil {
			plain := make([]byte, size)
			start = time.Now()
			_, err = dr.ReadAt(plain, 0)
			r.decrypt += time.Since(start)
			if err == io.EOF {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
	}
	return nil
}

// timeFsync writes every segment again, from the page cache, beside the
// vault, the way sync stores it, and times what makes each durable:
// fsync of the partial file, then, after its rename into place, fsync
// of the directory.
func (b *bench) timeFsync(r *profileResult) error {
	dir := filepath.Join(b.runDir, "fsync-test")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	syscall.Sync()
	for _, s := range b.rec.index.Segments {
		data, err := os.ReadFile(filepath.Join(b.vault, s.Name))
		if err != nil {
			return err
		}
		part := filepath.Join(dir, ".partial-"+s.Name)
		f, err := os.Create(part)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			start := time.Now()
			err = f.Sync()
			r.fsync += time.Since(start)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(part, filepath.Join(dir, s.Name))
		}
		if err != nil {
			return err
		}
		start := time.Now()
		if err := d.Sync(); err != nil {
			return err
		}
		r.dirSync += time.Since(start)
	}
	return nil
}

// Frames of the profile whose cumulative CPU time the report gives; they
// do not nest, so what they leave is "everything else".
var profileFrames = []struct{ what, frame string }{
	{"TLS: socket reads and record decryption (AES-GCM)", "crypto/tls.(*Conn).Read"},
	{"writing the vault files", "os.(*File).Write"},
	{"fsync", "os.(*File).Sync"},
	{"SHA-256", "crypto/internal/fips140/sha256.block"},
	{"age payload: ChaCha20-Poly1305", "golang.org/x/crypto/chacha20poly1305.(*chacha20poly1305).Open"},
	{"age header: ML-KEM-768 + X25519 unwrap", "filippo.io/age.decryptHdr"},
	{"garbage collection", "runtime.gcBgMarkWorker"},
}

// readProfile summarises the profile with go tool pprof.
func (r *profileResult) readProfile(ctx context.Context, goTool string) error {
	out, err := exec.CommandContext(ctx, goTool, "tool", "pprof", "-top", "-cum", "-nodecount=1000", r.path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v: %s", err, lastLines(string(out), 5))
	}
	cum := map[string]float64{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if strings.HasPrefix(strings.TrimSpace(line), "Duration:") {
			// Duration: 8.10s, Total samples = 5.20s (64.2%)
			if i := strings.Index(line, "Total samples = "); i >= 0 {
				r.samplesS = parseSeconds(strings.Fields(line[i+len("Total samples = "):])[0])
			}
			continue
		}
		if len(f) < 6 {
			continue
		}
		if v := parseSeconds(f[3]); v >= 0 {
			cum[strings.Join(f[5:], " ")] = v
		}
	}
	for _, pf := range profileFrames {
		r.top = append(r.top, pprofLine{what: pf.what + " — `" + pf.frame + "`", cum: cum[pf.frame]})
	}
	flat, err := exec.CommandContext(ctx, goTool, "tool", "pprof", "-top", "-nodecount=15", r.path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v: %s", err, lastLines(string(flat), 5))
	}
	// Drop the header lines (file, type, time) up to "Showing nodes".
	text := string(flat)
	if i := strings.Index(text, "Showing nodes"); i >= 0 {
		text = text[i:]
	}
	r.topText = strings.TrimSpace(text)
	return nil
}

// parseSeconds reads pprof's "1.23s", "450ms", "0" as seconds; -1 if not
// a duration.
func parseSeconds(s string) float64 {
	switch {
	case s == "0":
		return 0
	case strings.HasSuffix(s, "ms"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "ms"), 64)
		if err == nil {
			return v / 1000
		}
	case strings.HasSuffix(s, "us"), strings.HasSuffix(s, "µs"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(s, "us"), "µs"), 64)
		if err == nil {
			return v / 1e6
		}
	case strings.HasSuffix(s, "s"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
		if err == nil {
			return v
		}
	}
	return -1
}

// startPerf samples the device's stacks with perf while the profiled
// sync runs (cpu-clock: it works in VMs without hardware counters).
func (b *bench) startPerf(out string) (*bgProc, error) {
	if b.c.perf == "" {
		return nil, errors.New("perf is not installed (Debian: linux-perf)")
	}
	p, err := startProc("perf", b.c.perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
		"-p", strconv.Itoa(b.dev.proc.pid()), "-o", out)
	if err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // let it attach
	if p.exited() {
		return nil, p.failed()
	}
	return p, nil
}

// Frames of the device's profile the report gives (they nest).
var deviceFrames = []struct{ what, frame string }{
	{"answering segment requests, all of it", "attune.dev/attune/link.(*Server).handleSegment"},
	{"looking up the recording's index for each request", "attune.dev/attune/storage.(*Store).Index"},
	{"sending the file (`http.ServeContent`)", "net/http.ServeContent"},
	{"TLS records: encryption and socket writes", "crypto/tls.(*Conn).Write"},
	{"AES-GCM", "crypto/internal/fips140/aes/gcm.seal"},
	{"acknowledgements: deleting files, rewriting the index", "attune.dev/attune/link.(*Server).handleAck"},
	{"garbage collection", "runtime.gcBgMarkWorker"},
}

// readPerf gives the CPU time in deviceFrames, from perf's share of
// samples (children included) and the device's CPU time.
func readPerf(ctx context.Context, perf, data string, cpu time.Duration) ([]pprofLine, error) {
	out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--children", "--sort", "symbol", "-g", "none", "--stdio").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %v", err)
	}
	share := map[string]float64{}
	for line := range strings.Lines(string(out)) {
		// "    82.65%     0.00%  [.] attune.dev/attune/link.(*Server).handleSegment"
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || (f[2] != "[.]" && f[2] != "[k]") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err == nil {
			share[f[3]] = v / 100
		}
	}
	if len(share) == 0 {
		return nil, errors.New("perf report: no samples")
	}
	var lines []pprofLine
	for _, df := range deviceFrames {
		lines = append(lines, pprofLine{what: df.what + " — `" + df.frame + "`", cum: share[df.frame] * cpu.Seconds()})
	}
	return lines, nil
}
