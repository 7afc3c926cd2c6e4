//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"attune.dev/attune/internal/procstat"
	"golang.org/x/sys/unix"
)

// longScenario (opt-in: HIL_ONLY=long, HIL_LONG the length) records 1080p
// MJPEG fed to v4l2loopback at 30 fps and 48 kHz sound played into
// snd-aloop onto the ext4 disk /dev/vdb, for as long as HIL_LONG says.
// Each fed frame carries its number in a JPEG comment (COM "hil-seq N"),
// so the host can tell which fed frames the recording holds; attuned logs
// how many frames the driver dropped before they were dequeued (gaps in
// v4l2_buffer.sequence). The guest samples attuned's peak RSS (VmHWM) and
// CPU time from /proc while it runs.
func longScenario(r *Result) error {
	length, err := time.ParseDuration(os.Getenv("HIL_LONG"))
	if err != nil {
		return fmt.Errorf("HIL_LONG: %w", err)
	}
	dev, err := videoNode("hil-loop")
	if err != nil {
		return err
	}
	card, err := loopbackCard()
	if err != nil {
		return err
	}
	frames, _ := filepath.Glob("/hil/long/*.jpg")
	sort.Strings(frames)
	var jpegs [][]byte
	for _, f := range frames {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		jpegs = append(jpegs, b)
	}
	if len(jpegs) == 0 {
		return fmt.Errorf("no frames in /hil/long")
	}
	const mnt = "/long"
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount("/dev/vdb", mnt, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount /dev/vdb (ext4): %w", err)
	}
	defer func() {
		unix.Sync()
		if err := unix.Unmount(mnt, 0); err != nil {
			logf("long: unmount: %v", err)
		}
	}()
	fd, err := unix.Open(dev, unix.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	if err := setOutputFormat(fd, 1920, 1080, fourcc("MJPG")); err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	play, err := newPlayer(fmt.Sprintf("/dev/snd/pcmC%dD0p", card))
	if err != nil {
		return err
	}
	defer play.pcm.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var fed atomic.Int64
	var feedErr, playErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		playErr = play.run(ctx, make(chan time.Duration)) // clicks nobody waits for
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for n := 0; ctx.Err() == nil; n++ {
			if _, err := unix.Write(fd, numbered(jpegs[n%len(jpegs)], n)); err != nil {
				feedErr = fmt.Errorf("feed %s: %w", dev, err)
				return
			}
			fed.Add(1)
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the capture side appears once a frame is written

	data := mnt + "/data"
	os.MkdirAll(data, 0o755)
	var stdout, stderr bytes.Buffer
	rctx, rcancel := context.WithTimeout(context.Background(), length+2*time.Minute)
	defer rcancel()
	audio := fmt.Sprintf("alsa:hw:%d,1", card)
	cmd := exec.CommandContext(rctx, "/hil/attuned", "record", "--source", "v4l2:"+dev, "--audio", audio,
		"--recipients", "/hil/recipients.txt", "--data", data,
		"--duration", length.String(), "--log", "info")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	// Peak RSS and CPU time, read until attuned exits (VmHWM is the peak
	// so far; the last reading before the exit is the run's).
	var hwm, rss int64
	var cpu time.Duration
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	for waiting := true; waiting; {
		if h, r, ok := procMem(cmd.Process.Pid); ok {
			hwm, rss = h, r
		}
		if c, ok := procCPU(cmd.Process.Pid); ok {
			cpu = c
		}
		select {
		case runErr = <-done:
			waiting = false
		case <-time.After(time.Second):
			if since := time.Since(t); since.Round(time.Second)%time.Minute == 0 {
				logf("long: %v recorded; attuned VmHWM %d kB, VmRSS %d kB, CPU %v; %d frames fed", since.Round(time.Second), hwm, rss, cpu.Round(time.Second), fed.Load())
			}
		}
	}
	wall := time.Since(t)
	cancel()
	wg.Wait()
	logf("long: attuned record took %v; stderr:\n%s", wall.Round(time.Millisecond), stderr.String())
	if runErr != nil {
		return fmt.Errorf("attuned record: %v\n%s", runErr, stderr.String())
	}
	if feedErr != nil {
		return feedErr
	}
	if playErr != nil {
		return playErr
	}
	id := strings.TrimSpace(stdout.String())
	sealed := logFields(stderr.String(), "recording sealed")
	r.Notes = append(r.Notes, fmt.Sprintf("fed %d numbered 1920x1080 JPEGs at 30 fps; player: %v, %d underruns; attuned: peak RSS (VmHWM) %.1f MB, CPU %.0f s in %.0f s (%.0f%% of one emulated core)",
		fed.Load(), play.cfg, play.underruns, float64(hwm)/1024, cpu.Seconds(), wall.Seconds(), 100*cpu.Seconds()/wall.Seconds()))
	r.Extra = map[string]any{"id": id, "disk_data": "data", "seconds": length.Seconds(), "fed": fed.Load(),
		"vmhwm_kb": hwm, "cpu_seconds": cpu.Seconds(), "wall_seconds": wall.Seconds(), "sealed": sealed}
	return nil
}

// numbered is a JPEG with a comment segment (COM, FF FE) holding its
// number right after SOI: the host reads it back from the recording.
func numbered(jpeg []byte, n int) []byte {
	text := fmt.Sprintf("hil-seq %d", n)
	out := make([]byte, 0, len(jpeg)+6+len(text))
	out = append(out, 0xFF, 0xD8, 0xFF, 0xFE)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(text)))
	out = append(out, text...)
	return append(out, jpeg[2:]...)
}

// procMem is VmHWM and VmRSS (kB) from /proc/pid/status.
func procMem(pid int) (hwm, rss int64, ok bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss, hwm > 0
}

// procCPU is the user and system time of pid.
func procCPU(pid int) (time.Duration, bool) {
	self, _, err := procstat.Process(pid)
	return self, err == nil
}

// logFields is the key=value fields of the last slog line with msg.
func logFields(log, msg string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="`+msg+`"`) {
			continue
		}
		clear(out)
		for _, f := range strings.Fields(l) {
			if k, v, ok := strings.Cut(f, "="); ok {
				out[k] = strings.Trim(v, `"`)
			}
		}
	}
	return out
}
