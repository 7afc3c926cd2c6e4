//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// sample is one timed run of one contender.
type sample struct {
	wall      time.Duration
	clientCPU time.Duration // user+sys of the downloading process(es)
	serverCPU time.Duration // user+sys of the serving process(es) meanwhile
	kernelCPU time.Duration // the kernel's threads meanwhile: writeback, journal, softirq
	otherCPU  time.Duration // every other process meanwhile: interference
	syncAfter time.Duration // a `sync` right after: the dirty pages left behind
	// The machine's busy fraction in the second before the run (waitQuiet
	// waits for it to drop below 10%, up to -quiet).
	busyBefore float64
}

func (s sample) mbps(bytes int64) float64 { return float64(bytes) / 1e6 / s.wall.Seconds() }

// disturbed: other processes took more than a tenth of a CPU on average
// during the run, so it did not have the machine to itself.
func (s sample) disturbed() bool { return s.otherCPU > s.wall/10 }

type contender struct {
	key     string
	label   string
	command string
	diag    bool // explains ours; not one of the goals
	run     func(ctx context.Context) (sample, error)
	samples []sample
	reruns  int // runs discarded as disturbed
}

type bench struct {
	c      config
	dev    *device
	home   string
	rec    *recording
	srv    *servers
	runDir string

	// From init.
	h         *laptop.Home
	ldev      *laptop.Device
	cert      tls.Certificate
	ident     age.Identity
	vault     string // where sync puts the recording
	laptopCrt string // the laptop's certificate and key as PEM, for curl
	laptopKey string
	curlPin   string // the device's pin for curl --pinnedpubkey
	tlsOurs   string // TLS version and cipher the Go client negotiates with attuned
}

// init loads what the laptop home knows (keys, the pairing) and prepares
// the download lists.
func (b *bench) init(ctx context.Context) error {
	h, err := laptop.OpenHome(b.home)
	if err != nil {
		return err
	}
	devs, err := h.Devices()
	if err != nil || len(devs) != 1 {
		return fmt.Errorf("laptop home: %d paired devices (%v)", len(devs), err)
	}
	b.h, b.ldev = h, devs[0]
	b.ldev.Addr = b.dev.link
	if b.rec.index.CaseRef != b.ldev.Case {
		return fmt.Errorf("the recording belongs to case %q, the pairing to %q", b.rec.index.CaseRef, b.ldev.Case)
	}
	cs, err := h.Case(b.ldev.Case)
	if err != nil {
		return err
	}
	if b.ident, err = h.Identity(cs, nil); err != nil {
		return err
	}
	if b.cert, _, err = h.Cert(); err != nil {
		return err
	}
	b.vault = filepath.Join(b.home, "vault", cs.ID, b.rec.id)

	keyPEM, err := link.KeyPEM(b.cert.PrivateKey.(ed25519.PrivateKey))
	if err != nil {
		return err
	}
	b.laptopKey, b.laptopCrt = filepath.Join(b.runDir, "laptop.key"), filepath.Join(b.runDir, "laptop.crt")
	if err := os.WriteFile(b.laptopKey, keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(b.laptopCrt, link.CertPEM(b.cert), 0o600); err != nil {
		return err
	}
	if b.curlPin, err = link.CurlPin(b.ldev.Pin); err != nil {
		return err
	}

	// The TLS parameters attune's client gets: the same settings as
	// link.NewClient (TLS 1.3, Go's default cipher preferences).
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{b.cert},
		NextProtos: []string{"http/1.1"}, InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", b.dev.link)
	if err != nil {
		return fmt.Errorf("TLS to attuned: %v", err)
	}
	st := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	b.tlsOurs = tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	return nil
}

func (b *bench) contenders() []*contender {
	cs := []*contender{{
		key:     "ours",
		label:   "attune sync",
		command: "attune sync --device 127.0.0.1:PORT --json --home HOME",
		run:     func(ctx context.Context) (sample, error) { return b.runOurs(ctx, b.c.attune) },
	}, {
		key:     "curl",
		label:   "curl ← nginx (HTTPS)",
		command: "curl -sS --fail --tlsv1.3 --cacert nginx.crt --config urls.txt   # a url = https://127.0.0.1:PORT/ID/NNNNNN.age, output = … pair per file",
		run:     func(ctx context.Context) (sample, error) { return b.runCurlNginx(ctx, false) },
	}, {
		key:     "curlsync",
		label:   "curl ← nginx, then sync",
		command: "curl … (the same) && sync   # timed to the end of sync(2): the bytes durable, as attune sync's are when it acknowledges",
		run:     func(ctx context.Context) (sample, error) { return b.runCurlNginx(ctx, true) },
	}, {
		key:     "scp",
		label:   "scp -r ← sshd",
		command: fmt.Sprintf("scp -q -r -P PORT -i client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes root@127.0.0.1:/…/pristine/%s out/", b.rec.id),
		run:     b.runSCP,
	}, {
		key:     "godl",
		label:   "Go link client only ← attuned",
		command: "in-process: link.Client.Segment for every segment and the manifest, each into a file (no verification, fsync or acknowledgement)",
		diag:    true,
		run:     b.runGoDownload,
	}, {
		key:     "curlattuned",
		label:   "curl ← attuned",
		command: "curl -sS --fail --tlsv1.3 -k --pinnedpubkey sha256//… --cert laptop.crt --key laptop.key --config urls.txt   # …/api/v1/recordings/ID/segments/N",
		diag:    true,
		run:     b.runCurlAttuned,
	}}
	if b.c.baseline != "" {
		cs = append(cs, &contender{
			key:     "baseline",
			label:   "attune sync (-baseline build)",
			command: "the same, with the attune binary given as -baseline",
			diag:    true,
			run:     func(ctx context.Context) (sample, error) { return b.runOurs(ctx, b.c.baseline) },
		})
	}
	return cs
}

// timed waits for a quiet machine, then runs fn between page-cache
// flushes, so no earlier writeback overlaps it, and accounts for the CPU
// time of the server and of everything else meanwhile.
func (b *bench) timed(ctx context.Context, server *bgProc, fn func() (time.Duration, error)) (sample, error) {
	syscall.Sync()
	busy, err := waitQuiet(ctx, b.c.quiet, runtime.NumCPU())
	if err != nil {
		return sample{}, err
	}
	if server.exited() {
		return sample{}, server.failed()
	}
	cpu0, err := serverCPU(server.pid())
	if err != nil {
		return sample{}, fmt.Errorf("%s CPU: %v", server.name, err)
	}
	all0, err := machineBusy()
	if err != nil {
		return sample{}, err
	}
	k0 := kernelThreadsCPU()
	start := time.Now()
	ccpu, err := fn()
	wall := time.Since(start)
	if server.exited() {
		return sample{}, fmt.Errorf("%v; %v", err, server.failed())
	}
	if err != nil {
		return sample{}, err
	}
	all1, _ := machineBusy()
	k1 := kernelThreadsCPU()
	cpu1, err := serverCPU(server.pid())
	if err != nil {
		return sample{}, fmt.Errorf("%s CPU: %v", server.name, err)
	}
	s := sample{wall: wall, clientCPU: ccpu, serverCPU: cpu1 - cpu0, kernelCPU: k1 - k0, busyBefore: busy}
	s.otherCPU = max(0, all1-all0-s.clientCPU-s.serverCPU-s.kernelCPU)
	start = time.Now()
	syscall.Sync()
	s.syncAfter = time.Since(start)
	return s, nil
}

// runCmd runs a client in its own process group (killed whole if ctx
// ends) and returns its CPU time, its children's included.
func runCmd(ctx context.Context, stdout io.Writer, name string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &errb
	cmd.Env = append(os.Environ(), "ATTUNE_HOME=")
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", filepath.Base(name), err, lastLines(errb.String(), 10))
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func (b *bench) emptyVault() error {
	v := filepath.Join(b.home, "vault")
	if err := os.RemoveAll(v); err != nil {
		return err
	}
	return os.MkdirAll(v, 0o700)
}

// runOurs: `attune sync` of the restored recording into an empty vault
// of the paired home.
func (b *bench) runOurs(ctx context.Context, attune string) (sample, error) {
	if err := b.dev.restore(ctx, b.rec); err != nil {
		return sample{}, err
	}
	if err := b.emptyVault(); err != nil {
		return sample{}, err
	}
	defer b.emptyVault()
	var out bytes.Buffer
	s, err := b.timed(ctx, b.dev.proc, func() (time.Duration, error) {
		return runCmd(ctx, &out, attune, "sync", "--device", b.dev.link, "--json", "--home", b.home)
	})
	if err != nil {
		return s, err
	}
	res, err := syncResult(out.Bytes())
	if err != nil {
		return s, err
	}
	if len(res.Recordings) != 1 {
		return s, fmt.Errorf("sync reported %d recordings, want 1", len(res.Recordings))
	}
	rs := res.Recordings[0]
	if !rs.Complete || res.Problems() > 0 || rs.Fetched != len(b.rec.index.Segments) || rs.Acked != len(b.rec.index.Segments) {
		return s, fmt.Errorf("sync incomplete: %+v", rs)
	}
	if want := b.rec.bytes - b.rec.index.Manifest.Size; res.Bytes != want {
		return s, fmt.Errorf("sync fetched %d segment bytes, the recording has %d", res.Bytes, want)
	}
	if err := b.verifyDir(b.vault); err != nil {
		return s, fmt.Errorf("vault: %v", err)
	}
	if _, err := os.Stat(b.rec.dir); err == nil {
		return s, errors.New("the device still holds the recording after every segment was acknowledged")
	}
	return s, nil
}

// syncResult finds the {"event":"result",…} line of attune sync --json.
func syncResult(out []byte) (*laptop.SyncResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"event":"result"`)) {
			var res laptop.SyncResult
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				return nil, fmt.Errorf("attune sync result: %v", err)
			}
			return &res, nil
		}
	}
	return nil, fmt.Errorf("attune sync printed no result:\n%s", lastLines(string(out), 10))
}

// curlList writes a curl --config file fetching every file of the
// recording from base+name(file) into dir.
func (b *bench) curlList(path, dir string, url func(name string, seg int) string) error {
	var sb strings.Builder
	for n, s := range b.rec.index.Segments {
		fmt.Fprintf(&sb, "url = %q\noutput = %q\n", url(s.Name, n), filepath.Join(dir, s.Name))
	}
	fmt.Fprintf(&sb, "url = %q\noutput = %q\n", url("manifest.age", -1), filepath.Join(dir, "manifest.age"))
	return os.WriteFile(path, []byte(sb.String()), 0o600)
}

// freshDir empties dir (creating it) and returns a cleanup.
func freshDir(dir string) (func(), error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return func() { os.RemoveAll(dir) }, os.MkdirAll(dir, 0o755)
}

// runCurlNginx: one curl process, one TLS 1.3 connection, every file of
// the recording from nginx; with thenSync, followed by sync(1) inside the
// timing: the like-for-like contender, whose bytes are on disk when it
// ends, as attune sync's are when it acknowledges them.
func (b *bench) runCurlNginx(ctx context.Context, thenSync bool) (sample, error) {
	dir := filepath.Join(b.runDir, "out-curl")
	clean, err := freshDir(dir)
	if err != nil {
		return sample{}, err
	}
	defer clean()
	list := filepath.Join(b.runDir, "curl-nginx.txt")
	base := fmt.Sprintf("https://127.0.0.1:%d/%s/", b.srv.nginxPort, b.rec.id)
	if err := b.curlList(list, dir, func(name string, _ int) string { return base + name }); err != nil {
		return sample{}, err
	}
	s, err := b.timed(ctx, b.srv.nginx, func() (time.Duration, error) {
		cpu, err := runCmd(ctx, io.Discard, b.c.curl, "-sS", "--fail", "--tlsv1.3", "--cacert", b.srv.nginxCA, "--config", list)
		if err != nil || !thenSync {
			return cpu, err
		}
		scpu, err := runCmd(ctx, io.Discard, b.c.sync)
		return cpu + scpu, err
	})
	if err != nil {
		return s, err
	}
	return s, b.verifyDir(dir)
}

// runSCP: scp -r of the recording directory from our sshd.
func (b *bench) runSCP(ctx context.Context) (sample, error) {
	parent := filepath.Join(b.runDir, "out-scp")
	clean, err := freshDir(parent)
	if err != nil {
		return sample{}, err
	}
	defer clean()
	dst := filepath.Join(parent, b.rec.id)
	args := append([]string{"-q", "-r", "-P", strconv.Itoa(b.srv.sshPort)}, b.srv.sshOpts...)
	args = append(args, b.srv.sshUser+"@127.0.0.1:"+b.rec.pristine, dst)
	s, err := b.timed(ctx, b.srv.sshd, func() (time.Duration, error) {
		return runCmd(ctx, io.Discard, b.c.scp, args...)
	})
	if err != nil {
		return s, err
	}
	return s, b.verifyDir(dst)
}

// runGoDownload: attune's link client alone, from attuned, into files.
func (b *bench) runGoDownload(ctx context.Context) (sample, error) {
	if err := b.dev.restore(ctx, b.rec); err != nil {
		return sample{}, err
	}
	dir := filepath.Join(b.runDir, "out-go")
	clean, err := freshDir(dir)
	if err != nil {
		return sample{}, err
	}
	defer clean()
	s, err := b.timed(ctx, b.dev.proc, func() (time.Duration, error) {
		cpu0 := selfCPU()
		err := b.goDownload(ctx, dir)
		return selfCPU() - cpu0, err
	})
	if err != nil {
		return s, err
	}
	return s, b.verifyDir(dir)
}

func (b *bench) goDownload(ctx context.Context, dir string) error {
	client, err := link.NewClient(&net.Dialer{Timeout: 10 * time.Second}, b.dev.link, b.cert, b.ldev.Pin)
	if err != nil {
		return err
	}
	defer client.Close()
	get := func(name string, fetch func(io.Writer) (int64, error)) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		_, err = fetch(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	id := b.rec.id
	for n, s := range b.rec.index.Segments {
		if err := get(s.Name, func(w io.Writer) (int64, error) { return client.Segment(ctx, id, n, 0, w) }); err != nil {
			return err
		}
	}
	return get("manifest.age", func(w io.Writer) (int64, error) { return client.Manifest(ctx, id, w) })
}

// runCurlAttuned: curl with the laptop's key against attuned's link API.
func (b *bench) runCurlAttuned(ctx context.Context) (sample, error) {
	if err := b.dev.restore(ctx, b.rec); err != nil {
		return sample{}, err
	}
	dir := filepath.Join(b.runDir, "out-curl-attuned")
	clean, err := freshDir(dir)
	if err != nil {
		return sample{}, err
	}
	defer clean()
	list := filepath.Join(b.runDir, "curl-attuned.txt")
	base := fmt.Sprintf("https://%s/api/v1/recordings/%s/", b.dev.link, b.rec.id)
	err = b.curlList(list, dir, func(name string, n int) string {
		if n < 0 {
			return base + "manifest"
		}
		return base + "segments/" + strconv.Itoa(n)
	})
	if err != nil {
		return sample{}, err
	}
	s, err := b.timed(ctx, b.dev.proc, func() (time.Duration, error) {
		return runCmd(ctx, io.Discard, b.c.curl, "-sS", "--fail", "--tlsv1.3", "-k", "--pinnedpubkey", b.curlPin,
			"--cert", b.laptopCrt, "--key", b.laptopKey, "--config", list)
	})
	if err != nil {
		return s, err
	}
	return s, b.verifyDir(dir)
}

// verifyDir checks that dir holds every segment and the manifest of the
// recording, each with the size and SHA-256 of the device's index.
func (b *bench) verifyDir(dir string) error {
	want := append([]storage.FileInfo{*b.rec.index.Manifest}, b.rec.index.Segments...)
	want[0].Name = "manifest.age"
	var n int
	var total int64
	for _, fi := range want {
		ok, size, err := matches(filepath.Join(dir, fi.Name), fi)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %d bytes, not the device's %d bytes with SHA-256 %s…", fi.Name, size, fi.Size, fi.SHA256[:12])
		}
		n++
		total += size
	}
	if n != b.rec.files || total != b.rec.bytes {
		return fmt.Errorf("%d files, %d bytes; the recording has %d files, %d bytes", n, total, b.rec.files, b.rec.bytes)
	}
	return nil
}

func matches(path string, want storage.FileInfo) (bool, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, n, err
	}
	return n == want.Size && hex.EncodeToString(h.Sum(nil)) == want.SHA256, n, nil
}

// selfCPU is this process's user+sys time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func toolOutput(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	return string(out)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
