//go:build linux

// Command hil is the host side of `make hil`: Attune's own test on real
// Linux kernel drivers (gpio-sim, v4l2loopback, vivid, snd-aloop) in a
// qemu VM running Debian's stock kernel under TCG. docs/HIL.md says what
// the VM holds, how to run it and what each scenario checks.
//
// It builds the static attuned and the guest driver (./guest, the VM's
// /init), makes the MJPEG frames the guest feeds to v4l2loopback and an
// age key pair, packs an initramfs with busybox and the kernel modules
// (with their dependencies from modules.dep), boots it, reads the results
// the guest writes as a tar stream to a raw virtio disk, then decrypts the
// recordings with the stock age CLI and checks them with ffprobe/ffmpeg.
//
// setup.sh (run once by make hil) installs the Debian packages and builds
// the modules Debian's kernel lacks into the cache directory. With -arch
// arm64 or armhf (make hil-arm64, hil-armhf) the VM boots Debian's arm64
// or armmp-lpae kernel, which setup.sh CACHE ARCH downloads and unpacks
// into the cache and cross-compiles the modules for (arch.go holds what
// differs per architecture). -only long (make hil-long) is the opt-in long
// run: 1080p30 MJPEG and sound for -long, attuned's frames and peak RSS
// checked (long.go). Everything
// built lives in that cache (.hil, gitignored); nothing here is shipped,
// and hil never touches the host's own kernel or devices.
package main
