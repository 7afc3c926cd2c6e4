//go:build linux

package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// vmArch is what differs between the VMs of the architectures hil boots:
// how the static binaries are built, where the Debian kernel and its
// modules are, and how qemu runs it. Everything else is one code path.
type vmArch struct {
	name          string // Debian's: amd64, arm64, armhf
	goarch, goarm string
	qemu          string
	machine       []string // qemu's -machine and -cpu
	console       string
	// foreign kernels are unpacked by setup.sh into cache/<name>/sysroot;
	// amd64's is the one installed in /boot and /lib/modules.
	foreign bool
	// slow scales the VM's timeouts: TCG translates arm on x86 more
	// slowly than x86 on x86 (the frame-rate floors are the same: arm64
	// and armhf met amd64's).
	slow float64
}

var arches = map[string]vmArch{
	"amd64": {name: "amd64", goarch: "amd64", qemu: "qemu-system-x86_64",
		machine: []string{"-machine", "q35,accel=tcg", "-cpu", "max"}, console: "ttyS0", slow: 1},
	// cortex-a72, not max: max emulates pointer authentication (QARMA),
	// which makes TCG several times slower.
	"arm64": {name: "arm64", goarch: "arm64", qemu: "qemu-system-aarch64",
		machine: []string{"-machine", "virt,accel=tcg", "-cpu", "cortex-a72"}, console: "ttyAMA0", foreign: true, slow: 1.5},
	// armmp-lpae, the kernel of the 32-bit Pis' (ARMv7 with LPAE) Debian.
	"armhf": {name: "armhf", goarch: "arm", goarm: "7", qemu: "qemu-system-arm",
		machine: []string{"-machine", "virt,highmem=on,accel=tcg", "-cpu", "cortex-a15"}, console: "ttyAMA0", foreign: true, slow: 1.5},
}

func archByName(name string) (vmArch, error) {
	a, ok := arches[name]
	if !ok {
		return a, fmt.Errorf("unknown arch %q (amd64, arm64, armhf)", name)
	}
	return a, nil
}

// sysroot is where the VM's kernel (boot/) and modules (lib/modules/) are.
func (a vmArch) sysroot(cache string) string {
	if a.foreign {
		return filepath.Join(cache, a.name, "sysroot")
	}
	return "/"
}

// work is where a run keeps its initramfs, disks and results: the cache
// for amd64, cache/<name> for the others (so runs for different arches
// can share a cache).
func (a vmArch) work(cache string) string {
	if a.foreign {
		return filepath.Join(cache, a.name)
	}
	return cache
}

// goEnv is the environment for static builds of the VM's binaries.
func (a vmArch) goEnv() []string {
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + a.goarch}
	if a.goarm != "" {
		env = append(env, "GOARM="+a.goarm)
	}
	return env
}

// timeout is d scaled for the arch's slowness.
func (a vmArch) timeout(d time.Duration) time.Duration {
	return time.Duration(float64(d) * a.slow)
}

// qemuArgs boots the Debian kernel with the initramfs, env on its command
// line (for the guest's environment), and the disks as /dev/vda, /dev/vdb, ….
func (a vmArch) qemuArgs(sysroot, ver, initrd, env string, smp int, disks []string) []string {
	args := append([]string{}, a.machine...)
	args = append(args, "-m", "1G", "-smp", strconv.Itoa(smp),
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", filepath.Join(sysroot, "boot", "vmlinuz-"+ver), "-initrd", initrd,
		"-append", strings.TrimSpace("console="+a.console+" quiet panic=-1 rdinit=/init "+env))
	for _, d := range disks {
		args = append(args, "-drive", "file="+d+",format=raw,if=virtio")
	}
	return args
}
