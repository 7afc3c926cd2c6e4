//go:build linux

// Command guest is the /init of the hardware-in-the-loop VM (make hil): a
// static binary that runs as PID 1 inside qemu on Debian's stock kernel.
//
// It mounts /proc, /sys, /dev and configfs, loads the kernel modules the
// host listed in /hil/modules.txt, creates a gpio-sim chip whose 28 lines
// are named GPIO0–GPIO27 like a Raspberry Pi header, and runs the
// scenarios: the unmodified `attuned run --board pi-ref` driven through
// gpio-sim (buttons pulled, LED lines read back), and `attuned record` from
// v4l2loopback (fed MJPEG by this program) and from vivid (YUYV). Checks
// that need the live VM (LED colours, timing) are made here; recordings
// are handed to the host, which decrypts and probes them.
//
// Results leave the VM as a tar stream written raw to /dev/vda: result.json
// and the data directories. Progress lines go to the console (ttyS0).
//
// It must never exit: PID 1 exiting panics the kernel, so every path ends
// in a power-off. It is only ever run inside the HIL VM; it reconfigures
// the machine it runs on.
package main
