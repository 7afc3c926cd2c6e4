//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// piChip is the gpio-sim chip named like the Pi's header: the one the
// panel scenario made, or a new one.
func piChip() (*gpioSim, error) {
	dir := "/sys/kernel/config/gpio-sim/pi"
	if b, err := os.ReadFile(filepath.Join(dir, "live")); err == nil && strings.TrimSpace(string(b)) == "1" {
		dev, err1 := os.ReadFile(filepath.Join(dir, "dev_name"))
		chip, err2 := os.ReadFile(filepath.Join(dir, "bank0", "chip_name"))
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("gpio-sim: %w", err)
		}
		return &gpioSim{sysfs: filepath.Join("/sys/devices/platform", strings.TrimSpace(string(dev)), strings.TrimSpace(string(chip)))}, nil
	}
	return newGPIOSim(28)
}

// waitBlink waits up to d for the LED to blink c (fast or slow).
func (g *gpioSim) waitBlink(c string, d time.Duration) error {
	var err error
	for t := time.Now(); time.Since(t) < d; {
		if err = blinks(g.sample(700*time.Millisecond), c); err == nil {
			logf("LED blinks %s after %v", c, time.Since(t).Round(time.Millisecond))
			return nil
		}
	}
	return fmt.Errorf("after %v: %w", d, err)
}

// recordings lists the ids under data/recordings.
func recordings(data string) []string {
	ds, _ := filepath.Glob(filepath.Join(data, "recordings", "*"))
	var ids []string
	for _, d := range ds {
		ids = append(ids, filepath.Base(d))
	}
	return ids
}

// indexState is a recording's index.json state.
func indexState(data, id string) string {
	b, err := os.ReadFile(filepath.Join(data, "recordings", id, "index.json"))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var ix struct {
		State    string `json:"state"`
		Segments []any  `json:"segments"`
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return "unreadable: " + err.Error()
	}
	return fmt.Sprintf("%s, %d segments", ix.State, len(ix.Segments))
}

const vividDevice = "vivid.0" // the platform device vivid's n_devs=1 makes

// vivid unbinds ("unbind") or binds ("bind") vivid's platform device: the
// camera's cable pulled, and plugged back in.
func vivid(op string) error {
	return os.WriteFile("/sys/bus/platform/drivers/vivid/"+op, []byte(vividDevice), 0)
}

// unplugScenario records from vivid with `attuned run --board pi-ref` and
// unbinds vivid mid-recording: the recording is sealed (ended by an
// error), the LED blinks red fast until acknowledged and while there is no
// camera, REC is refused, the daemon lives on and records again once vivid
// is bound again.
func unplugScenario(r *Result) error {
	g, err := piChip()
	if err != nil {
		return err
	}
	for _, n := range []int{pinREC, pinMARK, pinPAIR} {
		if err := g.pull(n, "pull-up"); err != nil {
			return err
		}
	}
	dev, err := videoNode("vivid")
	if err != nil {
		return err
	}
	const data = "/data/unplug"
	cfg := fmt.Sprintf(`data = %q
recipients = "/hil/recipients.txt"
listen = "127.0.0.1:8444"
[capture]
source = "v4l2:%s"
audio = "none"
[system]
log_level = "info"
`, data, dev)
	if err := os.WriteFile("/tmp/attuned.toml", []byte(cfg), 0o644); err != nil {
		return err
	}
	os.MkdirAll(data, 0o755)
	d, err := startDaemon("pi-ref")
	if err != nil {
		return err
	}
	defer d.stop()
	bound := true
	defer func() {
		if !bound {
			vivid("bind")
		}
	}()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w\ndaemon log:\n%s", what, err, d.log.String())
		}
		r.Notes = append(r.Notes, what+": ok")
		logf("unplug: %s: ok", what)
		return nil
	}
	alive := func() error {
		select {
		case err := <-d.done:
			d.done <- err
			return fmt.Errorf("attuned exited: %v", err)
		default:
			return nil
		}
	}
	count := func(want int) error {
		if ids := recordings(data); len(ids) != want {
			return fmt.Errorf("%d recordings (%v), want %d", len(ids), ids, want)
		}
		return nil
	}
	if err := step("ready shows green", g.waitLED("green", 30*time.Second)); err != nil {
		return err
	}
	if err := step("REC press", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("recording shows red", g.waitLED("red", 20*time.Second)); err != nil {
		return err
	}
	recStart := time.Now()
	time.Sleep(4 * time.Second)
	if err := step("unbind vivid ("+dev+" gone)", vivid("unbind")); err != nil {
		return err
	}
	bound = false
	firstSeconds := time.Since(recStart).Seconds()
	if err := step("fault: red blinks fast", g.waitBlink("red", 15*time.Second)); err != nil {
		return err
	}
	if err := step("attuned still runs", alive()); err != nil {
		return err
	}
	if err := step("one recording", count(1)); err != nil {
		return err
	}
	first := recordings(data)[0]
	st := indexState(data, first)
	if err := step("its index: "+st, nil); err != nil {
		return err
	}
	if !strings.HasPrefix(st, "complete") {
		return fmt.Errorf("unplugged recording's index is %s, want complete (sealed, reason error)", st)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := step("still red blinking 1.5 s later", blinks(g.sample(time.Second), "red")); err != nil {
		return err
	}
	if err := step("MARK press (acknowledge)", g.press(pinMARK, 200*time.Millisecond)); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	if err := step("no camera: still red blinking", blinks(g.sample(time.Second), "red")); err != nil {
		return err
	}
	if err := step("REC press without a camera", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	time.Sleep(time.Second)
	if err := step("REC refused: red blinking", blinks(g.sample(time.Second), "red")); err != nil {
		return err
	}
	if err := step("no new recording", count(1)); err != nil {
		return err
	}
	if err := step("bind vivid", vivid("bind")); err != nil {
		return err
	}
	bound = true
	var again string
	for t := time.Now(); time.Since(t) < 10*time.Second && again == ""; time.Sleep(100 * time.Millisecond) {
		again, _ = videoNode("vivid")
	}
	if again != dev {
		return fmt.Errorf("vivid came back as %q, not %s", again, dev)
	}
	if err := step("MARK press (acknowledge the refusal)", g.press(pinMARK, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("camera back: green", g.waitLED("green", 15*time.Second)); err != nil {
		return err
	}
	if err := step("REC press", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := g.waitLED("red", 20*time.Second); err != nil {
		// Where is it stuck? SIGQUIT makes Go print every goroutine.
		d.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(2 * time.Second)
		return step("recording again shows red", err)
	}
	time.Sleep(3 * time.Second)
	if err := step("REC press (stop)", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("stopped shows green", g.waitLED("green", 20*time.Second)); err != nil {
		return err
	}
	if err := step("SIGTERM ends the daemon cleanly", d.stop()); err != nil {
		return err
	}
	if err := count(2); err != nil {
		return err
	}
	var second string
	for _, id := range recordings(data) {
		if id != first {
			second = id
		}
	}
	r.Extra = map[string]any{"id": second, "data": strings.TrimPrefix(data, "/"),
		"first": first, "first_seconds": firstSeconds}
	return nil
}

// powercutScenario has two parts. In the power-cut boot (HIL_POWERCUT=cut)
// it records onto the ext4 disk /dev/vda, says "hil-powercut: recording
// started" on the console and waits for the host to kill the VM. In the
// main boot it mounts each such disk (/dev/vdb, … HIL_DISKS of them) under
// /data and runs `attuned record` on it, which recovers the cut recording
// at start (storage recovery); the host decrypts and measures it.
func powercutScenario(r *Result) error {
	if os.Getenv("HIL_POWERCUT") == "cut" {
		err := powerCutRecord()
		logf("powercut: %v", err)
		powerOff() // never write results over the ext4 disk
	}
	n, _ := strconv.Atoi(os.Getenv("HIL_DISKS"))
	if n == 0 {
		return errors.New("no power-cut disks attached (run the powercut scenario from internal/hil, which makes them)")
	}
	var cuts []any
	for i := 0; i < n; i++ {
		dev := fmt.Sprintf("/dev/vd%c", 'b'+i)
		mnt := fmt.Sprintf("/data/powercut-%d", i+1)
		os.MkdirAll(mnt, 0o755)
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			return fmt.Errorf("mount %s (ext4) on %s: %w", dev, mnt, err)
		}
		before := recordings(mnt)
		if len(before) != 1 {
			return fmt.Errorf("%s: %d recordings (%v) after the cut, want 1", dev, len(before), before)
		}
		cutState := indexState(mnt, before[0])
		// attuned record opens the store, which recovers the cut recording.
		out, err := exec.Command("/hil/attuned", "record", "--source", "testsrc", "--audio", "none",
			"--recipients", "/hil/recipients.txt", "--data", mnt, "--duration", "1s", "--log", "info").CombinedOutput()
		if err != nil {
			return fmt.Errorf("attuned record on %s: %v\n%s", dev, err, out)
		}
		logf("powercut %d: attuned record:\n%s", i+1, out)
		st := indexState(mnt, before[0])
		r.Notes = append(r.Notes, fmt.Sprintf("cut %d: recording %s: index %s at the cut, %s after recovery", i+1, before[0], cutState, st))
		if !strings.HasPrefix(st, "interrupted") || !strings.Contains(string(out), "recording interrupted") {
			return fmt.Errorf("cut %d: recording %s not recovered as interrupted: index %s", i+1, before[0], st)
		}
		cuts = append(cuts, map[string]any{"id": before[0], "data": strings.TrimPrefix(mnt, "/")})
	}
	r.Extra = map[string]any{"cuts": cuts}
	return nil
}

// powerCutRecord records the test pattern onto the ext4 disk /dev/vda
// until the VM is killed; it returns only if that goes wrong.
func powerCutRecord() error {
	const mnt = "/data/pc"
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount("/dev/vda", mnt, "ext4", 0, ""); err != nil {
		return fmt.Errorf("mount /dev/vda (ext4): %w", err)
	}
	cmd := exec.Command("/hil/attuned", "record", "--source", "testsrc", "--audio", "none",
		"--recipients", "/hil/recipients.txt", "--data", mnt, "--log", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		fmt.Println("attuned| " + sc.Text())
		if strings.Contains(sc.Text(), "recording started") {
			fmt.Println("hil-powercut: recording started")
			break
		}
	}
	go io.Copy(os.Stdout, stderr)
	return fmt.Errorf("attuned record ended before the power cut: %v", cmd.Wait())
}
