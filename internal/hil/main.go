//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Frames fed to v4l2loopback: distinct 640x480 JPEGs, looped at 30 fps.
const (
	nFrames            = 120
	frameW, frameH     = 640, 480
	feedFPS            = 30
	defaultBootTimeout = 4 * time.Minute
)

// result mirrors the guest's Result.
type result struct {
	Name    string         `json:"name"`
	OK      bool           `json:"ok"`
	Notes   []string       `json:"notes"`
	Error   string         `json:"error"`
	Seconds float64        `json:"seconds"`
	Extra   map[string]any `json:"extra"`
}

func main() {
	cache := flag.String("cache", ".hil", "cache directory (setup.sh's modules, the initramfs, results)")
	timeout := flag.Duration("timeout", defaultBootTimeout, "longest the VM may run")
	only := flag.String("only", defaultScenarios, "comma-separated scenarios to run (panel,mjpeg,yuyv,sync,gadget,unplug,powercut); empty: all")
	smp := flag.Int("smp", 2, "virtual CPUs")
	long := flag.Duration("long", 15*time.Minute, "how long the long scenario (-only long, make hil-long) records")
	archName := flag.String("arch", "amd64", "the VM's architecture: amd64, arm64 (Debian's arm64 kernel) or armhf (armmp-lpae); setup.sh CACHE ARCH prepares it")
	flag.Parse()
	arch, err := archByName(*archName)
	if err == nil {
		err = run(arch, *cache, *timeout, *only, *smp, *long)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hil: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("hil: PASS")
}

// defaultScenarios is what make hil (and so make test) runs: all but the
// long run.
const defaultScenarios = "panel,mjpeg,yuyv,sync,gadget,unplug,powercut"

// vm is the VM to boot: its architecture, its Debian kernel's version and
// where that kernel is (the sysroot), the initramfs and the CPU count.
type vm struct {
	arch    vmArch
	sysroot string
	ver     string
	initrd  string
	smp     int
}

// command is qemu booting the VM with env on the kernel's command line
// and disks as /dev/vda, /dev/vdb, ….
func (v vm) command(env string, disks []string) *exec.Cmd {
	return exec.Command(v.arch.qemu, v.arch.qemuArgs(v.sysroot, v.ver, v.initrd, env, v.smp, disks)...)
}

func run(arch vmArch, cache string, timeout time.Duration, only string, smp int, long time.Duration) error {
	t0 := time.Now()
	cache, err := filepath.Abs(cache)
	if err != nil {
		return err
	}
	v := vm{arch: arch, sysroot: arch.sysroot(cache), smp: smp}
	work := arch.work(cache) // the initramfs, disks and results
	v.ver, err = kernelVersion(v.sysroot)
	if err != nil {
		return err
	}
	root := filepath.Join(work, "root")
	os.RemoveAll(root)
	for _, d := range []string{"hil/frames", "hil/ko", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := buildBinaries(arch, root); err != nil {
		return err
	}
	frames, err := makeFrames(filepath.Join(root, "hil/frames"), frameW, frameH, nFrames)
	if err != nil {
		return err
	}
	marker, err := makeMarker(filepath.Join(root, "hil/marker.jpg"))
	if err != nil {
		return err
	}
	identity, err := ageKeys(cache, root)
	if err != nil {
		return err
	}
	isLong, err := wantLong(only)
	if err != nil {
		return err
	}
	env := ""
	if only != "" {
		env = "HIL_ONLY=" + only
	}
	var extra []string // disks after the results disk
	if isLong {
		d, err := longSetup(root, work, long)
		if err != nil {
			return err
		}
		extra = append(extra, d)
		env += " HIL_LONG=" + long.String()
		timeout += long
	}
	if err := modules(v, cache, root); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(v.sysroot, "bin/busybox"), filepath.Join(root, "bin/busybox"), 0o755); err != nil {
		return fmt.Errorf("busybox (busybox-static): %w", err)
	}
	os.Symlink("busybox", filepath.Join(root, "bin/sh"))
	v.initrd = filepath.Join(work, "initrd.cpio")
	if err := cpio(root, v.initrd); err != nil {
		return err
	}
	disk := filepath.Join(work, "out.img")
	os.Remove(disk)
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(disk, 512<<20); err != nil {
		return err
	}
	fmt.Printf("hil: initramfs ready in %.1fs; booting %s (%s)\n", time.Since(t0).Seconds(), v.ver, arch.name)
	cutDisks, err := powerCuts(v, work, only)
	if err != nil {
		return err
	}
	if len(cutDisks) > 0 {
		env += fmt.Sprintf(" HIL_DISKS=%d", len(cutDisks))
		extra = append(extra, cutDisks...)
	}
	tBoot := time.Now()
	if err := boot(v, disk, arch.timeout(timeout), env, extra...); err != nil {
		return err
	}
	fmt.Printf("hil: VM ran %.1fs\n", time.Since(tBoot).Seconds())
	out := filepath.Join(work, "out")
	os.RemoveAll(out)
	results, err := readOut(disk, out)
	if err != nil {
		return err
	}
	var failed []string
	for i := range results {
		r := &results[i]
		if r.OK {
			var err error
			if r.Name == "long" {
				err = longCheck(r, out, extra[0], identity)
			} else {
				err = hostCheck(r, out, identity, frames, marker)
			}
			if err == nil {
				err = faultCheck(r, out, identity, frames)
			}
			if err != nil {
				r.OK, r.Error = false, "host check: "+err.Error()
			}
		}
		status := "PASS"
		if !r.OK {
			status = "FAIL"
			failed = append(failed, r.Name)
		}
		fmt.Printf("hil: %s %s %s (%.1fs in the VM)\n", status, arch.name, r.Name, r.Seconds)
		for _, n := range r.Notes {
			fmt.Printf("      %s\n", n)
		}
		if r.Error != "" {
			fmt.Printf("      error: %s\n", strings.ReplaceAll(r.Error, "\n", "\n      "))
		}
	}
	fmt.Printf("hil: total %.1fs\n", time.Since(t0).Seconds())
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, ", "))
	}
	return nil
}

// kernelVersion is the Debian kernel in sysroot/boot (on amd64 the host's
// /boot: the host may run another kernel).
func kernelVersion(sysroot string) (string, error) {
	ks, _ := filepath.Glob(filepath.Join(sysroot, "boot/vmlinuz-*"))
	if len(ks) == 0 {
		return "", fmt.Errorf("no %s/boot/vmlinuz-*: run internal/hil/setup.sh", sysroot)
	}
	sort.Strings(ks)
	return strings.TrimPrefix(filepath.Base(ks[len(ks)-1]), "vmlinuz-"), nil
}

func buildBinaries(arch vmArch, root string) error {
	for _, b := range []struct{ pkg, out string }{
		{"./cmd/attuned", "hil/attuned"},
		{"./cmd/attune", "hil/attune"},
		{"./internal/hil/guest", "init"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, b.out), b.pkg)
		cmd.Env = append(os.Environ(), arch.goEnv()...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", b.pkg, err)
		}
	}
	return nil
}

// makeFrames writes n distinct w×h JPEGs (a moving bar over a changing
// background) and returns the index of each frame by its SHA-256.
func makeFrames(dir string, w, h, n int) (map[[32]byte]int, error) {
	byHash := map[[32]byte]int{}
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := 0; i < n; i++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yy := uint8(40 + (x+y+3*i)%160)
				if x/8 == i%(w/8) {
					yy = 235
				}
				img.Y[img.YOffset(x, y)] = yy
			}
		}
		for j := range img.Cb {
			img.Cb[j], img.Cr[j] = uint8(64+i), uint8(192-i)
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 70}); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b.Bytes())
		if _, dup := byHash[sum]; dup {
			return nil, fmt.Errorf("frames: %d is a duplicate", i)
		}
		byHash[sum] = i
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.jpg", i)), b.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	return byHash, nil
}

// ageKeys makes (once) an X25519 identity in the cache with Debian's
// age-keygen and puts its recipient in the VM.
func ageKeys(cache, root string) (string, error) {
	id := filepath.Join(cache, "identity.txt")
	if _, err := os.Stat(id); err != nil {
		if out, err := exec.Command("age-keygen", "-o", id).CombinedOutput(); err != nil {
			return "", fmt.Errorf("age-keygen: %v: %s", err, out)
		}
	}
	rcpt, err := exec.Command("age-keygen", "-y", id).Output()
	if err != nil {
		return "", fmt.Errorf("age-keygen -y: %w", err)
	}
	return id, os.WriteFile(filepath.Join(root, "hil/recipients.txt"), rcpt, 0o644)
}

// vmModules are loaded in this order, each after its dependencies, with
// these parameters. "hil:" names are built by setup.sh.
var vmModules = []struct{ name, params string }{
	{"configfs", ""},
	{"hil:irq_sim", ""},
	{"hil:gpio-sim", ""},
	{"virtio_pci", ""},
	{"virtio_blk", ""},
	{"crc32c_generic", ""}, // ext4's checksums (loaded on demand, and the VM has no modprobe)
	{"ext4", ""},           // the power-cut disks
	{"vivid", "n_devs=1 node_types=0x1"},
	{"v4l2loopback", "devices=1 video_nr=10 card_label=hil-loop exclusive_caps=1 max_buffers=8"},
	{"snd-aloop", ""},
	// The USB link: both ends in one kernel (gadget scenario).
	{"dummy_hcd", ""},
	{"libcomposite", ""},
	{"usb_f_ncm", ""},
	{"cdc_ncm", ""},
}

// modules copies the VM's modules and their dependencies (modules.dep)
// into root/hil/ko, decompressed, and writes hil/modules.txt in load order.
func modules(v vm, cache, root string) error {
	base := filepath.Join(v.sysroot, "lib/modules", v.ver)
	dep := map[string][]string{} // module name → its file, then its dependencies' files
	f, err := os.Open(filepath.Join(base, "modules.dep"))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		file, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		dep[modName(file)] = append([]string{file}, strings.Fields(deps)...)
	}
	var order []string
	loaded := map[string]bool{}
	var load func(name string) error
	load = func(name string) error {
		if loaded[name] {
			return nil
		}
		files, ok := dep[name]
		if !ok {
			return fmt.Errorf("module %s not in %s/modules.dep", name, base)
		}
		// modules.dep lists dependencies so that the last is loaded first.
		for i := len(files) - 1; i >= 1; i-- {
			if err := load(modName(files[i])); err != nil {
				return err
			}
		}
		dst := filepath.Join(root, "hil/ko", name+".ko")
		if err := decompress(filepath.Join(base, files[0]), dst); err != nil {
			return err
		}
		loaded[name] = true
		order = append(order, "/hil/ko/"+name+".ko")
		return nil
	}
	for _, m := range vmModules {
		line := ""
		if n, ok := strings.CutPrefix(m.name, "hil:"); ok {
			src := filepath.Join(cache, "kmod", v.ver, n+".ko")
			if err := copyFile(src, filepath.Join(root, "hil/ko", n+".ko"), 0o644); err != nil {
				return fmt.Errorf("%w (run internal/hil/setup.sh)", err)
			}
			line = "/hil/ko/" + n + ".ko"
		} else {
			if err := load(m.name); err != nil {
				return err
			}
			line = order[len(order)-1]
			order = order[:len(order)-1]
		}
		order = append(order, strings.TrimSpace(line+" "+m.params))
	}
	return os.WriteFile(filepath.Join(root, "hil/modules.txt"), []byte(strings.Join(order, "\n")+"\n"), 0o644)
}

// modName is a module's name from its path: dashes and underscores are
// the same to the kernel, modules.dep keeps the file's spelling.
func modName(path string) string {
	n := filepath.Base(path)
	return n[:strings.Index(n, ".ko")]
}

// decompress copies a module, undoing .xz/.zst/.gz (busybox's insmod and
// finit_module without flags want it plain).
func decompress(src, dst string) error {
	var tool string
	switch {
	case strings.HasSuffix(src, ".ko"):
		return copyFile(src, dst, 0o644)
	case strings.HasSuffix(src, ".xz"):
		tool = "xz"
	case strings.HasSuffix(src, ".zst"):
		tool = "zstd"
	case strings.HasSuffix(src, ".gz"):
		tool = "gzip"
	default:
		return fmt.Errorf("module %s: unknown compression", src)
	}
	out, err := exec.Command(tool, "-dc", src).Output()
	if err != nil {
		return fmt.Errorf("%s -dc %s: %w", tool, src, err)
	}
	return os.WriteFile(dst, out, 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// cpio packs root as a newc archive (uncompressed: the kernel unpacks it
// faster than it would decompress it under TCG).
func cpio(root, out string) error {
	cmd := exec.Command("sh", "-c", "find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0 > "+strconv.Quote(out))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

// boot runs the VM until it powers off, echoing its console; env goes on
// the kernel's command line (the guest's environment). The extra disks
// are /dev/vdb, /dev/vdc, ….
func boot(v vm, disk string, timeout time.Duration, env string, extra ...string) error {
	cmd := v.command(strings.TrimSpace(env), append([]string{disk}, extra...))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fmt.Println("vm| " + strings.TrimRight(sc.Text(), "\r"))
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("qemu: %w (timeout %v)", err, timeout)
	}
	return nil
}

// readOut reads the guest's tar stream from the disk image into dir and
// returns result.json.
func readOut(disk, dir string) ([]result, error) {
	f, err := os.Open(disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var results []result
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("results disk: %w (did the guest finish?)", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if h.Name == "result.json" {
			if err := json.Unmarshal(b, &results); err != nil {
				return nil, fmt.Errorf("result.json: %w", err)
			}
			continue
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	if results == nil {
		return nil, errors.New("results disk: no result.json (did the guest finish?)")
	}
	return results, nil
}
