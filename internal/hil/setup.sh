#!/bin/sh
# One-time setup for `make hil` (docs/HIL.md): Debian packages, then the
# kernel modules Debian's kernel lacks, built into CACHE (default .hil).
# Idempotent: packages already installed and modules already built are
# skipped. Run as root, or with SUDO=sudo for the apt-get and dkms steps.
#
# ARCH (amd64, the default; arm64; armhf) is the VM's. amd64 boots the
# Debian kernel installed in /boot. arm64 and armhf boot Debian's arm64 and
# armmp-lpae kernels, fetched with apt-get download (a private package
# list in CACHE/ARCH/apt: the host's dpkg gets no foreign architecture)
# and unpacked with dpkg -x into CACHE/ARCH/sysroot; their modules are
# cross-compiled against the unpacked headers.
set -eu
cache=${1:-.hil}
arch=${2:-amd64}
here=$(cd "$(dirname "$0")" && pwd)
SUDO=${SUDO:-}

case $arch in
amd64) pkgs="qemu-system-x86 linux-image-amd64 linux-headers-amd64" ;;
arm64) pkgs="qemu-system-arm gcc-aarch64-linux-gnu" flavour=arm64 karch=arm64 triplet=aarch64-linux-gnu ;;
armhf) pkgs="qemu-system-arm gcc-arm-linux-gnueabihf" flavour=armmp-lpae karch=arm triplet=arm-linux-gnueabihf ;;
*) echo "hil setup: unknown arch $arch (amd64, arm64, armhf)"; exit 2 ;;
esac
pkgs="$pkgs linux-source-6.1 busybox-static v4l2loopback-dkms cpio xz-utils age ffmpeg e2fsprogs make gcc"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "hil setup: installing$missing"
	$SUDO apt-get update -q
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# kmod_build DIR KDIR [MAKE ARGS]: gpio-sim and irq_sim, out of tree from
# linux-source-6.1, into DIR, against the kernel headers KDIR.
kmod_build() {
	kmod=$1 kdir=$2
	shift 2
	[ -f "$kmod/gpio-sim.ko" ] && [ -f "$kmod/irq_sim.ko" ] && return
	echo "hil setup: building gpio-sim and irq_sim for $(basename "$kmod")"
	rm -rf "$kmod" && mkdir -p "$kmod"
	tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$kmod" --strip-components=1 --wildcards \
		'*/drivers/gpio/gpio-sim.c' '*/drivers/gpio/gpiolib.h' '*/kernel/irq/irq_sim.c'
	mv "$kmod/drivers/gpio/gpio-sim.c" "$kmod/drivers/gpio/gpiolib.h" "$kmod/"
	sed -f "$here/irq_sim.sed" "$kmod/kernel/irq/irq_sim.c" > "$kmod/irq_sim.c"
	rm -rf "$kmod/drivers" "$kmod/kernel"
	echo 'obj-m += gpio-sim.o irq_sim.o' > "$kmod/Kbuild"
	make -s -C "$kdir" M="$kmod" "$@" modules 2>&1 | grep -v "Skipping BTF" || true
	[ -f "$kmod/gpio-sim.ko" ] && [ -f "$kmod/irq_sim.ko" ] || { echo "hil setup: module build failed"; exit 1; }
}

if [ "$arch" = amd64 ]; then
	# The Debian kernel the VM boots (not the host's: uname -r may be another).
	ver=$(ls /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||' | sort -V | tail -n 1)
	[ -d "/lib/modules/$ver/build" ] || { echo "hil setup: no headers for $ver (linux-headers-amd64 out of step with linux-image-amd64?)"; exit 1; }
	# v4l2loopback: dkms builds it when the package or the headers arrive;
	# build it for $ver if that did not happen.
	if ! ls /lib/modules/"$ver"/updates/dkms/v4l2loopback.ko* >/dev/null 2>&1; then
		$SUDO dkms autoinstall -k "$ver"
	fi
	kmod_build "$cache/kmod/$ver" "/lib/modules/$ver/build"
	echo "hil setup: kernel $ver ready"
	exit 0
fi

# A foreign kernel: its image (with modules) and headers, unpacked.
sys=$cache/$arch/sysroot
apt=$cache/$arch/apt
aptopts="-o APT::Architecture=$arch -o APT::Architectures::=$arch -o Dir::State::Lists=$apt/lists -o Dir::Cache=$apt/cache -o Dir::State::status=$apt/status -o Debug::NoLocking=1"
if [ ! -f "$sys/.unpacked" ]; then
	rm -rf "$sys" "$apt" && mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb" "$sys"
	: > "$apt/status"
	apt-get $aptopts update -q >/dev/null
	image=$(apt-cache $aptopts depends "linux-image-$flavour" | sed -n "s/^ *Depends: \(linux-image-6[^ ]*-$flavour\)\$/\1/p" | head -n 1)
	[ -n "$image" ] || { echo "hil setup: no linux-image-$flavour for $arch"; exit 1; }
	v=${image#linux-image-}
	echo "hil setup: downloading $image and its headers ($arch)"
	# busybox-static: the VM's /bin/busybox, for the target.
	(cd "$apt/deb" && apt-get $aptopts download "$image" "linux-headers-$v" "linux-headers-${v%-$flavour}-common" busybox-static 2>&1 | grep -v "unsandboxed" || true)
	for d in "$apt"/deb/*.deb; do dpkg -x "$d" "$sys"; done
	# The headers' Makefile includes the common headers by absolute path.
	sed -i "s|^include /usr/src/|include $sys/usr/src/|" "$sys/usr/src/linux-headers-$v/Makefile"
	# Their scripts are linux-kbuild-6.1's (../../lib/linux-kbuild-6.1): the
	# host's amd64 build, which suits a 64-bit target.
	mkdir -p "$sys/usr/lib"
	ln -sfn /usr/lib/linux-kbuild-6.1 "$sys/usr/lib/linux-kbuild-6.1"
	touch "$sys/.unpacked"
fi
ver=$(ls "$sys"/boot/vmlinuz-* | sed 's|^.*/boot/vmlinuz-||' | sort -V | tail -n 1)
kdir=$sys/usr/src/linux-headers-$ver
kmake="ARCH=$karch CROSS_COMPILE=$triplet-"

if [ "$arch" = armhf ] && [ -L "$sys/usr/lib/linux-kbuild-6.1" ]; then
	# linux-kbuild-6.1's modpost knows the amd64 layout of the device
	# tables (struct of_device_id: 200 bytes) and rejects 32-bit modules
	# ("sizeof(struct of_device_id)=200 is not a modulo of the size of
	# section __mod_of__<ident>_device_table=196"). Build modpost from
	# linux-source-6.1 with the target's layout: scripts/mod as an external
	# module of the target's headers, so kbuild compiles
	# devicetable-offsets.c and empty.c with the cross compiler.
	echo "hil setup: building modpost for $arch"
	mp=$cache/$arch/modpost
	rm -rf "$mp" && mkdir -p "$mp"
	tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$mp" --strip-components=1 --wildcards 'linux-source-6.1/scripts/mod/*' \
		linux-source-6.1/include/linux/license.h linux-source-6.1/include/linux/mod_devicetable.h
	make -s -C "$kdir" M="$mp/scripts/mod" $kmake 2>&1 | grep -v "Skipping BTF" || true
	[ -x "$mp/scripts/mod/modpost" ] || { echo "hil setup: modpost build failed"; exit 1; }
	rm "$sys/usr/lib/linux-kbuild-6.1"
	cp -a /usr/lib/linux-kbuild-6.1 "$sys/usr/lib/linux-kbuild-6.1"
	cp "$mp/scripts/mod/modpost" "$sys/usr/lib/linux-kbuild-6.1/scripts/mod/modpost"
fi

kmod_build "$cache/kmod/$ver" "$kdir" $kmake

# v4l2loopback from the dkms package's source, into updates/ of the
# unpacked modules (depmod adds it to their modules.dep).
mods=$sys/lib/modules/$ver
if [ ! -f "$mods/updates/v4l2loopback.ko" ]; then
	src=$(ls -d /usr/src/v4l2loopback-* | sort -V | tail -n 1)
	echo "hil setup: building $(basename "$src") for $ver"
	b=$cache/kmod/$ver/v4l2loopback
	rm -rf "$b" && cp -r "$src" "$b"
	echo 'obj-m += v4l2loopback.o' > "$b/Kbuild"
	make -s -C "$kdir" M="$b" $kmake modules 2>&1 | grep -v "Skipping BTF" || true
	[ -f "$b/v4l2loopback.ko" ] || { echo "hil setup: v4l2loopback build failed"; exit 1; }
	mkdir -p "$mods/updates"
	cp "$b/v4l2loopback.ko" "$mods/updates/"
	depmod -b "$sys" "$ver"
fi
echo "hil setup: kernel $ver ($arch) ready"
