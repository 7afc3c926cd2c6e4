#!/bin/sh
# One-time setup for `make hil` (docs/HIL.md): Debian packages, then the
# kernel modules Debian's kernel lacks, built into CACHE (default .hil).
# Idempotent: packages already installed and modules already built are
# skipped. Run as root, or with SUDO=sudo for the apt-get and dkms steps.
set -eu
cache=${1:-.hil}
here=$(dirname "$0")
SUDO=${SUDO:-}

pkgs="qemu-system-x86 linux-image-amd64 linux-headers-amd64 linux-source-6.1 busybox-static v4l2loopback-dkms cpio xz-utils age ffmpeg"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "hil setup: installing$missing"
	$SUDO apt-get update -q
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# The Debian kernel the VM boots (not the host's: uname -r may be another).
ver=$(ls /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n 1)
[ -d "/lib/modules/$ver/build" ] || { echo "hil setup: no headers for $ver (linux-headers-amd64 out of step with linux-image-amd64?)"; exit 1; }

# v4l2loopback: dkms builds it when the package or the headers arrive;
# build it for $ver if that did not happen.
if ! ls /lib/modules/"$ver"/updates/dkms/v4l2loopback.ko* >/dev/null 2>&1; then
	$SUDO dkms autoinstall -k "$ver"
fi

# gpio-sim and irq_sim, out of tree from linux-source-6.1.
kmod="$cache/kmod/$ver"
if [ ! -f "$kmod/gpio-sim.ko" ] || [ ! -f "$kmod/irq_sim.ko" ]; then
	echo "hil setup: building gpio-sim and irq_sim for $ver"
	rm -rf "$kmod" && mkdir -p "$kmod"
	tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$kmod" --strip-components=1 --wildcards \
		'*/drivers/gpio/gpio-sim.c' '*/drivers/gpio/gpiolib.h' '*/kernel/irq/irq_sim.c'
	mv "$kmod/drivers/gpio/gpio-sim.c" "$kmod/drivers/gpio/gpiolib.h" "$kmod/"
	sed -f "$here/irq_sim.sed" "$kmod/kernel/irq/irq_sim.c" > "$kmod/irq_sim.c"
	rm -rf "$kmod/drivers" "$kmod/kernel"
	echo 'obj-m += gpio-sim.o irq_sim.o' > "$kmod/Kbuild"
	make -s -C "/lib/modules/$ver/build" M="$(cd "$kmod" && pwd)" modules 2>&1 | grep -v "Skipping BTF" || true
	[ -f "$kmod/gpio-sim.ko" ] && [ -f "$kmod/irq_sim.ko" ] || { echo "hil setup: module build failed"; exit 1; }
fi
echo "hil setup: kernel $ver ready"
