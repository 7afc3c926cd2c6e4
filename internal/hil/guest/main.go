//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Result is one scenario's outcome, as written to result.json.
type Result struct {
	Name    string         `json:"name"`
	OK      bool           `json:"ok"`
	Notes   []string       `json:"notes,omitempty"`
	Error   string         `json:"error,omitempty"`
	Seconds float64        `json:"seconds"`
	Extra   map[string]any `json:"extra,omitempty"`
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Printf("hil-guest %6.2fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	if helper() {
		return
	}
	defer powerOff()
	defer func() {
		if r := recover(); r != nil {
			logf("PANIC %v\n%s", r, debug.Stack())
		}
	}()
	var results []Result
	if err := setup(); err != nil {
		results = append(results, Result{Name: "setup", Error: err.Error()})
	} else {
		results = append(results, Result{Name: "setup", OK: true, Seconds: time.Since(start).Seconds()})
		for _, sc := range scenarios {
			want := os.Getenv("HIL_ONLY")
			if (want != "" || sc.optIn) && !strings.Contains(","+want+",", ","+sc.name+",") {
				continue
			}
			results = append(results, run(sc.name, sc.fn))
		}
	}
	if err := writeOut(results); err != nil {
		logf("write results: %v", err)
	}
}

// scenarios run in this order; an optIn one only when HIL_ONLY names it.
var scenarios = []struct {
	name  string
	fn    func(*Result) error
	optIn bool
}{
	{"panel", panelScenario, false},
	{"mjpeg", mjpegScenario, false},
	{"yuyv", yuyvScenario, false},
	{"gadget", gadgetScenario, false},
	{"unplug", unplugScenario, false},
	{"powercut", powercutScenario, false},
	{"sync", syncScenario, false},
	{"long", longScenario, true}, // make hil-long: minutes of 1080p30 and sound
}

func run(name string, fn func(*Result) error) (r Result) {
	r.Name = name
	t := time.Now()
	logf("scenario %s: start", name)
	defer func() {
		if p := recover(); p != nil {
			r.Error = fmt.Sprintf("panic: %v\n%s", p, debug.Stack())
		}
		r.Seconds = time.Since(t).Seconds()
		r.OK = r.Error == ""
		logf("scenario %s: ok=%v %s (%.1fs)", name, r.OK, r.Error, r.Seconds)
	}()
	if err := fn(&r); err != nil {
		r.Error = err.Error()
	}
	return r
}

// setup mounts the pseudo file systems, a tmpfs for the data directories,
// and loads the modules listed in /hil/modules.txt ("file.ko [params]", in
// dependency order).
func setup() error {
	for _, m := range []struct{ src, dst, typ, opts string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", ""},
		{"tmpfs", "/data", "tmpfs", "size=512m"},
		{"tmpfs", "/tmp", "tmpfs", "size=64m"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, m.opts); err != nil {
			return fmt.Errorf("setup: mount %s: %w", m.dst, err)
		}
	}
	f, err := os.Open("/hil/modules.txt")
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if err := insmod(fields[0], strings.Join(fields[1:], " ")); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		if filepath.Base(fields[0]) == "configfs.ko" {
			if err := unix.Mount("configfs", "/sys/kernel/config", "configfs", 0, ""); err != nil {
				return fmt.Errorf("setup: mount configfs: %w", err)
			}
		}
	}
	logf("modules loaded")
	return sc.Err()
}

func insmod(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("insmod: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil && err != unix.EEXIST {
		return fmt.Errorf("insmod %s %s: %w", filepath.Base(path), params, err)
	}
	return nil
}

// writeOut writes result.json and everything under /data as one tar
// stream to the raw disk /dev/vda.
func writeOut(results []Result) error {
	disk, err := os.OpenFile("/dev/vda", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer disk.Close()
	tw := tar.NewWriter(disk)
	js, _ := json.MarshalIndent(results, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: "result.json", Mode: 0o644, Size: int64(len(js))}); err != nil {
		return err
	}
	tw.Write(js)
	err = filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: 0o644, Size: info.Size()}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return disk.Sync()
}

func powerOff() {
	logf("power off")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
