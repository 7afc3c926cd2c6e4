//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gpioSim is a live gpio-sim chip; line n is named GPIOn.
type gpioSim struct {
	sysfs string // /sys/devices/platform/gpio-sim.N/gpiochipM
}

// newGPIOSim creates a gpio-sim chip with lines GPIO0…GPIO(n-1) through
// configfs, like the Pi's header chip.
func newGPIOSim(n int) (*gpioSim, error) {
	dir := "/sys/kernel/config/gpio-sim/pi"
	bank := filepath.Join(dir, "bank0")
	if err := os.MkdirAll(bank, 0o755); err != nil {
		return nil, fmt.Errorf("gpio-sim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bank, "num_lines"), []byte(fmt.Sprint(n)), 0); err != nil {
		return nil, fmt.Errorf("gpio-sim: num_lines: %w", err)
	}
	for i := 0; i < n; i++ {
		line := filepath.Join(bank, fmt.Sprintf("line%d", i))
		if err := os.Mkdir(line, 0o755); err != nil {
			return nil, fmt.Errorf("gpio-sim: %w", err)
		}
		if err := os.WriteFile(filepath.Join(line, "name"), []byte(fmt.Sprintf("GPIO%d", i)), 0); err != nil {
			return nil, fmt.Errorf("gpio-sim: line %d name: %w", i, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "live"), []byte("1"), 0); err != nil {
		return nil, fmt.Errorf("gpio-sim: live: %w", err)
	}
	dev, err := os.ReadFile(filepath.Join(dir, "dev_name"))
	if err != nil {
		return nil, fmt.Errorf("gpio-sim: %w", err)
	}
	chip, err := os.ReadFile(filepath.Join(bank, "chip_name"))
	if err != nil {
		return nil, fmt.Errorf("gpio-sim: %w", err)
	}
	g := &gpioSim{sysfs: filepath.Join("/sys/devices/platform", strings.TrimSpace(string(dev)), strings.TrimSpace(string(chip)))}
	logf("gpio-sim: %s, lines GPIO0–GPIO%d", g.sysfs, n-1)
	return g, nil
}

// pull sets the simulated external pull of line n: "pull-up" or "pull-down".
func (g *gpioSim) pull(n int, dir string) error {
	return os.WriteFile(filepath.Join(g.sysfs, fmt.Sprintf("sim_gpio%d", n), "pull"), []byte(dir), 0)
}

// value reads line n as the chip sees it (for an output, what the consumer drives).
func (g *gpioSim) value(n int) bool {
	b, err := os.ReadFile(filepath.Join(g.sysfs, fmt.Sprintf("sim_gpio%d", n), "value"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// The pi-ref profile's pins.
const (
	pinREC, pinMARK, pinPAIR  = 17, 27, 22
	pinRed, pinGreen, pinBlue = 5, 6, 13
)

// led is the colour on the RGB LED: "off", "red", "green", "blue",
// "amber" (red+green), "white", …
func (g *gpioSim) led() string {
	r, gr, b := g.value(pinRed), g.value(pinGreen), g.value(pinBlue)
	switch {
	case r && gr && b:
		return "white"
	case r && gr:
		return "amber"
	case r && !gr && !b:
		return "red"
	case gr && !r && !b:
		return "green"
	case b && !r && !gr:
		return "blue"
	case !r && !gr && !b:
		return "off"
	}
	return fmt.Sprintf("r%vg%vb%v", r, gr, b)
}

// sample reads the LED every 10 ms for d and returns the colours seen, in
// order, without repeats.
func (g *gpioSim) sample(d time.Duration) []string {
	var seen []string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		c := g.led()
		if len(seen) == 0 || seen[len(seen)-1] != c {
			seen = append(seen, c)
		}
	}
	return seen
}

// waitLED waits up to d for the LED to show colour c.
func (g *gpioSim) waitLED(c string, d time.Duration) error {
	t := time.Now()
	for ; time.Since(t) < d; time.Sleep(10 * time.Millisecond) {
		if g.led() == c {
			logf("LED %s after %v", c, time.Since(t).Round(time.Millisecond))
			return nil
		}
	}
	return fmt.Errorf("LED is %s, not %s, after %v", g.led(), c, d)
}

// press holds button line n (active low: pulled down) for d.
func (g *gpioSim) press(n int, d time.Duration) error {
	if err := g.pull(n, "pull-down"); err != nil {
		return err
	}
	time.Sleep(d)
	return g.pull(n, "pull-up")
}

// panelScenario runs `attuned run --board pi-ref` on the gpio-sim chip and
// works the buttons: ready is green; PAIR held 3 s → blue blinking slowly;
// REC cancels it → green; REC → red steady; MARK → red flashing; REC →
// green; PAIR held 3 s with that footage unsynced → refused, amber
// blinking.
func panelScenario(r *Result) error {
	g, err := newGPIOSim(28)
	if err != nil {
		return err
	}
	// Idle buttons: pulled up, as the Pi's internal pull-ups would.
	for _, n := range []int{pinREC, pinMARK, pinPAIR} {
		if err := g.pull(n, "pull-up"); err != nil {
			return err
		}
	}
	cfg := `data = "/data/panel"
recipients = "/hil/recipients.txt"
listen = "127.0.0.1:8443"
[capture]
source = "testsrc"
audio = "none"
[system]
log_level = "info"
`
	if err := os.WriteFile("/tmp/attuned.toml", []byte(cfg), 0o644); err != nil {
		return err
	}
	os.MkdirAll("/data/panel", 0o755)
	d, err := startDaemon("pi-ref")
	if err != nil {
		return err
	}
	defer d.stop()
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w\ndaemon log:\n%s", what, err, d.log.String())
		}
		r.Notes = append(r.Notes, what+": ok")
		logf("panel: %s: ok", what)
		return nil
	}
	if err := step("ready shows green", g.waitLED("green", 30*time.Second)); err != nil {
		return err
	}
	if !strings.Contains(d.log.String(), "i2c") {
		return fmt.Errorf("no warning about the missing INA219 (the VM has no I2C)\ndaemon log:\n%s", d.log.String())
	}
	r.Notes = append(r.Notes, "pi-ref as is: attuned warned about the missing INA219 and runs without a battery figure")
	if err := step("PAIR held 3.5 s", g.press(pinPAIR, 3500*time.Millisecond)); err != nil {
		return err
	}
	if err := step("pairing blinks blue slowly", blinks(g.sample(2500*time.Millisecond), "blue")); err != nil {
		return err
	}
	if err := step("REC press (cancels pairing)", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("pairing cancelled shows green", g.waitLED("green", 10*time.Second)); err != nil {
		return err
	}
	recStart := time.Now()
	if err := step("REC press", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("recording shows red", g.waitLED("red", 10*time.Second)); err != nil {
		return err
	}
	if err := step("red stays steady for 1.5 s", only(g.sample(1500*time.Millisecond), "red")); err != nil {
		return err
	}
	// Watch the LED from before the press: the flash starts as the press
	// is taken, and a busy host may run the press itself late.
	flash := make(chan []string, 1)
	go func() { flash <- g.sample(1500 * time.Millisecond) }()
	if err := step("MARK press", g.press(pinMARK, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("mark flashes red", blinks(<-flash, "red")); err != nil {
		return err
	}
	time.Sleep(time.Second)
	if err := step("red steady again after the mark flash", only(g.sample(time.Second), "red")); err != nil {
		return err
	}
	recSeconds := time.Since(recStart).Seconds()
	if err := step("REC press (stop)", g.press(pinREC, 200*time.Millisecond)); err != nil {
		return err
	}
	if err := step("stopped shows green", g.waitLED("green", 15*time.Second)); err != nil {
		return err
	}
	// Footage not yet synced: PAIR must not open a window that would let
	// another laptop take the device over.
	if err := step("PAIR held 3.5 s with unsynced footage", g.press(pinPAIR, 3500*time.Millisecond)); err != nil {
		return err
	}
	if err := step("pairing refused: amber blinks", blinks(g.sample(1500*time.Millisecond), "amber", "red", "green")); err != nil {
		return err
	}
	if err := step("SIGTERM ends the daemon cleanly", d.stop()); err != nil {
		return err
	}
	// The one recording goes to the host for decrypting and probing.
	recs, _ := filepath.Glob("/data/panel/recordings/*")
	if len(recs) != 1 {
		return fmt.Errorf("want 1 recording in /data/panel/recordings, have %v", recs)
	}
	r.Extra = map[string]any{"id": filepath.Base(recs[0]), "data": "data/panel", "seconds": recSeconds}
	return nil
}

// only checks that seen is exactly the one colour c.
func only(seen []string, c string) error {
	if len(seen) != 1 || seen[0] != c {
		return fmt.Errorf("LED showed %v, want only %s", seen, c)
	}
	return nil
}

// blinks checks that seen alternates between c and off, at least twice
// each. parts are colours the LED may show for an instant while it
// switches to c (amber is red and green, written one line at a time).
func blinks(seen []string, c string, parts ...string) error {
	on, off := 0, 0
	for _, s := range seen {
		switch {
		case s == c:
			on++
		case s == "off":
			off++
		case slices.Contains(parts, s):
		default:
			return fmt.Errorf("LED showed %v, want %s blinking", seen, c)
		}
	}
	if on < 2 || off < 1 {
		return fmt.Errorf("LED showed %v, want %s blinking", seen, c)
	}
	return nil
}

type daemon struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

// startDaemon starts attuned run with board and waits briefly to see that
// it did not exit at once.
func startDaemon(board string) (*daemon, error) {
	return startDaemonWith(board, "/tmp/attuned.toml")
}

// startDaemonWith is startDaemon with the config file config.
func startDaemonWith(board, config string) (*daemon, error) {
	d := &daemon{log: new(syncBuffer), done: make(chan error, 1)}
	d.cmd = exec.Command("/hil/attuned", "run", "--config", config, "--board", board)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.done <- d.cmd.Wait() }()
	select {
	case err := <-d.done:
		return nil, fmt.Errorf("attuned run --board %s exited: %v: %s", board, err, d.log.String())
	case <-time.After(3 * time.Second):
		return d, nil
	}
}

// stop sends SIGTERM and waits up to 15 s for a clean exit.
func (d *daemon) stop() error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			return fmt.Errorf("attuned run: %v", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		return errors.New("attuned run did not end within 15 s of SIGTERM")
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine exec starts.
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
