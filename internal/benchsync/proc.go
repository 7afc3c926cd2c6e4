//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"attune.dev/attune/internal/procstat"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bgProc is a server this benchmark started: attuned, sshd or nginx. It
// runs in its own process group (so Ctrl-C reaches only us, and stop
// reaches its children too) and is killed if we die first.
type bgProc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

func startProc(name string, path string, args ...string) (*bgProc, error) {
	p := &bgProc{name: name, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *bgProc) pid() int { return p.cmd.Process.Pid }

func (p *bgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 5 s.
func (p *bgProc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// failed describes a server that exited early, with its log.
func (p *bgProc) failed() error {
	log := strings.TrimSpace(p.log.String())
	hint := ""
	if strings.Contains(log, "signal=terminated") {
		hint = " (another process sent it SIGTERM: something else on this machine is killing daemons)"
	}
	return fmt.Errorf("%s exited%s: %v; its log:\n%s", p.name, hint, p.err, log)
}

// waitLog waits until the process has logged s.
func (p *bgProc) waitLog(ctx context.Context, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), s) {
		if p.exited() {
			return p.failed()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never logged %q in %v; its log:\n%s", p.name, s, timeout, p.log.String())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// waitListening waits until addr accepts TCP connections.
func (p *bgProc) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return p.failed()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s: %v; its log:\n%s", p.name, addr, err, p.log.String())
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// freePort picks a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// procCPU is the CPU time of a process and of the children it has
// reaped.
func procCPU(pid int) (time.Duration, error) {
	self, children, err := procstat.Process(pid)
	return self + children, err
}

// serverCPU is procCPU once the process has reaped every child it
// forked for the last connection (sshd does; nginx and attuned do not
// fork), so their CPU time is counted.
func serverCPU(pid int) (time.Duration, error) {
	children := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(children)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return procCPU(pid)
}

// copyTree copies a directory as `cp -a` does.
func copyTree(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// machineBusy is the CPU time all CPUs have spent busy since boot (not
// idle, not waiting for I/O).
func machineBusy() (time.Duration, error) {
	busy, _, err := procstat.Machine()
	return busy, err
}

// waitQuiet waits, up to limit, until the machine is nearly idle: other
// processes (a build, a test run) would take CPU from whichever contender
// runs next. It returns the busy fraction of the last second, 0..1 of
// the whole machine.
func waitQuiet(ctx context.Context, limit time.Duration, ncpu int) (float64, error) {
	deadline := time.Now().Add(limit)
	for {
		b0, err := machineBusy()
		if err != nil {
			return 0, err
		}
		if err := sleep(ctx, time.Second); err != nil {
			return 0, err
		}
		b1, err := machineBusy()
		if err != nil {
			return 0, err
		}
		frac := (b1 - b0).Seconds() / float64(ncpu)
		if frac < 0.1 || time.Now().After(deadline) {
			return frac, nil
		}
	}
}

// copyFile copies the executable src to dst and returns dst.
func copyFile(src, dst string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, b, 0o755)
}

// kernelThreadsCPU is the CPU time of the kernel's own threads
// (writeback, journal, softirq), from /proc/*/stat.
func kernelThreadsCPU() time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[6] is field 9 (flags); utime and stime are fields 14 and 15.
		if len(f) < 13 {
			continue
		}
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		if flags&0x00200000 == 0 { // PF_KTHREAD
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * (time.Second / 100)
}
