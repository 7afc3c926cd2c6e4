//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"attune.dev/attune/storage"
)

// Input parameters, as internal/benchrec uses them: webcam-like 720p30
// MJPEG (~55 KB a frame) with 48 kHz mono PCM, ~13.6 Mbit/s.
const (
	inWidth, inHeight, inFPS = 1280, 720, 30
	inQuality                = 4
	baseSeconds              = 60 // generated once, then looped
)

// input is the file the simulated camera replays.
type input struct {
	path    string
	size    int64
	seconds float64
	gen     []string // the ffmpeg commands that made it
}

// makeInput generates a minute of test pattern once and loops it (stream
// copy, fast) to the length asked for; both are cached in the work dir.
func makeInput(ctx context.Context, c config, stderr io.Writer) (input, error) {
	baseName := fmt.Sprintf("in-%dx%d-%dfps-q%d-%ds.mkv", inWidth, inHeight, inFPS, inQuality, baseSeconds)
	name := fmt.Sprintf("in-%dx%d-%dfps-q%d-%ds-loop.mkv", inWidth, inHeight, inFPS, inQuality, c.seconds)
	base, path := filepath.Join(c.work, baseName), filepath.Join(c.work, name)
	genBase := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", inWidth, inHeight, inFPS),
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", strconv.Itoa(baseSeconds),
		"-c:v", "mjpeg", "-q:v", strconv.Itoa(inQuality), "-pix_fmt", "yuvj420p", "-c:a", "pcm_s16le", "-ac", "1"}
	genLoop := []string{"-stream_loop", "-1", "-i", baseName, "-t", strconv.Itoa(c.seconds), "-c", "copy"}
	in := input{path: path, gen: []string{
		"ffmpeg " + strings.Join(genBase, " ") + " " + baseName,
		"ffmpeg " + strings.Join(genLoop, " ") + " " + name,
	}}
	ffmpeg := func(args []string, out string) error {
		tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid())
		cmd := exec.CommandContext(ctx, c.ffmpeg, append(append([]string{"-nostdin", "-v", "error", "-y"}, args...), "-f", "matroska", tmp)...)
		cmd.Dir = c.work
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("generate input: ffmpeg: %v: %s", err, strings.TrimSpace(errb.String()))
		}
		return os.Rename(tmp, out)
	}
	if _, err := os.Stat(path); err != nil {
		if _, err := os.Stat(base); err != nil {
			fmt.Fprintf(stderr, "generating %s (%d s of %dx%d MJPEG + PCM) ...\n", base, baseSeconds, inWidth, inHeight)
			if err := ffmpeg(genBase, base); err != nil {
				return in, err
			}
		}
		fmt.Fprintf(stderr, "looping it to %s (%d s) ...\n", path, c.seconds)
		if err := ffmpeg(genLoop, path); err != nil {
			return in, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return in, err
	}
	in.size = fi.Size()
	out, err := exec.CommandContext(ctx, c.ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		return in, fmt.Errorf("ffprobe %s: %v (delete it to regenerate)", path, err)
	}
	in.seconds, _ = strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if in.seconds < float64(c.seconds)*0.98 {
		return in, fmt.Errorf("input %s lasts %.1f s, want %d s (delete it to regenerate)", path, in.seconds, c.seconds)
	}
	return in, nil
}

// device is `attuned run` on the simulated board.
type device struct {
	proc  *bgProc
	data  string
	panel string // http://127.0.0.1:PORT/
	link  string // 127.0.0.1:PORT
}

// startDevice starts attuned with the file source replayed as fast as it
// can be read, and waits until it runs. The returned device, if any, must
// be stopped even when err is set.
func startDevice(ctx context.Context, c config, runDir, in string) (*device, error) {
	d := &device{data: filepath.Join(runDir, "device")}
	cfgPath := filepath.Join(runDir, "device.toml")
	cfg := fmt.Sprintf(`board = "sim"
data = %q
listen = "127.0.0.1:0"
panel = "127.0.0.1:0"

[capture]
source = %q
pace = "none"

[storage]
max_minutes = %d

[system]
log_level = "info"
lock_memory = false
`, d.data, "file:"+in, c.seconds/60+10)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	ready := filepath.Join(runDir, "device-ready.json")
	p, err := startProc("attuned", c.attuned, "run", "--config", cfgPath, "--ready-file", ready)
	if err != nil {
		return nil, err
	}
	d.proc = p
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, err := os.ReadFile(ready)
		if err == nil {
			var addrs struct{ Link, Panel string }
			if err := json.Unmarshal(raw, &addrs); err != nil || addrs.Link == "" || addrs.Panel == "" {
				return d, fmt.Errorf("attuned's ready file %s: %q (%v)", ready, raw, err)
			}
			d.link, d.panel = addrs.Link, "http://"+addrs.Panel+"/"
			return d, nil
		}
		if p.exited() {
			return d, p.failed()
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("attuned not ready in 15s; its log:\n%s", p.log.String())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return d, err
		}
	}
}

type panelState struct {
	State string `json:"state"`
	Code  string `json:"code"`
}

func (d *device) panelState(ctx context.Context) (panelState, error) {
	var p panelState
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.panel+"api/panel", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return p, fmt.Errorf("panel: %v", err)
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

// press holds buttons on the simulated panel for ms milliseconds; it
// answers after the release.
func (d *device) press(ctx context.Context, ms int, buttons ...string) error {
	b, _ := json.Marshal(map[string]any{"buttons": buttons, "ms": ms})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.panel+"api/panel/press", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("panel: press %v: %v", buttons, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("panel: press %v: %s", buttons, resp.Status)
	}
	return nil
}

// waitState waits until the panel shows state.
func (d *device) waitState(ctx context.Context, state string, timeout time.Duration) (panelState, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := d.panelState(ctx)
		if err != nil {
			return p, err
		}
		if p.State == state {
			return p, nil
		}
		if d.proc.exited() {
			return p, d.proc.failed()
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("the panel never showed %s in %v (last %q); attuned's log:\n%s", state, timeout, p.State, d.proc.log.String())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return p, err
		}
	}
}

// pair opens the pairing window (PAIR held 3 s) and pairs a new laptop
// home with the code shown, as a practitioner does.
func (d *device) pair(ctx context.Context, attune, home string) error {
	if err := d.press(ctx, 3100, "pair"); err != nil {
		return err
	}
	p, err := d.waitState(ctx, "pairing", 10*time.Second)
	if err != nil {
		return err
	}
	if len(p.Code) != 6 {
		return fmt.Errorf("pairing code %q", p.Code)
	}
	cmd := exec.CommandContext(ctx, attune, "pair", "--home", home, "--device", d.link, "--code", p.Code, "--case", "benchsync", "--no-passphrase") // the contenders decrypt with the case key as is
	cmd.Env = append(os.Environ(), "ATTUNE_HOME=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "paired with device") {
		return fmt.Errorf("attune pair: %v: %s", err, strings.TrimSpace(string(out)))
	}
	_, err = d.waitState(ctx, "ready", 10*time.Second)
	return err
}

// recording is the one recording the device holds, and its pristine copy.
type recording struct {
	id        string
	index     *storage.Index
	dir       string // on the device
	pristine  string // the copy every round restores from; nginx and sshd serve it
	bytes     int64  // segments + manifest: what every contender moves
	files     int    // segments + manifest
	endReason string
}

var sealedRE = regexp.MustCompile(`msg="recording sealed" recording=(\S+) .*reason=(\S+)`)

// record presses REC, waits until the recording ends by itself at the end
// of the source (the panel goes back to ready), checks it and copies it.
func (d *device) record(ctx context.Context, timeout time.Duration, pristineRoot string) (*recording, error) {
	if err := d.press(ctx, 100, "rec"); err != nil {
		return nil, err
	}
	if err := d.proc.waitLog(ctx, `msg="recording started"`, 10*time.Second); err != nil {
		return nil, err
	}
	if _, err := d.waitState(ctx, "ready", timeout); err != nil {
		return nil, err
	}
	if err := d.proc.waitLog(ctx, `msg="recording sealed"`, 10*time.Second); err != nil {
		return nil, err
	}
	m := sealedRE.FindStringSubmatch(d.proc.log.String())
	if m == nil {
		return nil, fmt.Errorf("no recording sealed in attuned's log:\n%s", d.proc.log.String())
	}
	r := &recording{id: m[1], endReason: m[2], dir: filepath.Join(d.data, "recordings", m[1])}
	if r.endReason != "end-of-source" {
		return nil, fmt.Errorf("recording %s ended by %s, not at the end of the source; attuned's log:\n%s", r.id, r.endReason, d.proc.log.String())
	}
	ix, err := readIndex(filepath.Join(r.dir, "index.json"))
	if err != nil {
		return nil, err
	}
	if ix.State != storage.Complete || ix.Manifest == nil || len(ix.Segments) == 0 {
		return nil, fmt.Errorf("recording %s: index state %q, %d segments, manifest %v", r.id, ix.State, len(ix.Segments), ix.Manifest != nil)
	}
	r.index = ix
	r.bytes = ix.Manifest.Size
	for _, s := range ix.Segments {
		r.bytes += s.Size
	}
	r.files = len(ix.Segments) + 1
	r.pristine = filepath.Join(pristineRoot, r.id)
	if err := copyTree(ctx, r.dir, r.pristine); err != nil {
		return nil, err
	}
	return r, nil
}

// restore puts the pristine copy back on the device (sync deletes what it
// acknowledged).
func (d *device) restore(ctx context.Context, r *recording) error {
	if err := os.RemoveAll(r.dir); err != nil {
		return err
	}
	return copyTree(ctx, r.pristine, r.dir)
}

func readIndex(path string) (*storage.Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ix storage.Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &ix, nil
}
