#!/bin/sh
# install-test.sh DEB: installs the amd64 package into a fresh Debian 12
# chroot (mmdebstrap, no systemd running there, as in an image build) and
# checks what the maintainer scripts did: the user and its groups, the
# conffile, the service enabled, the state directory; then an upgrade in
# place, remove (recordings kept, service masked), purge (config gone,
# recordings still kept) and purge with ATTUNE_PURGE_RECORDINGS=yes.
# Needs root, mmdebstrap and Debian's package mirror. make deb-install-test.
set -eu

deb=$(realpath "$1")
root=$(mktemp -d /tmp/attuned-chroot.XXXXXX)
trap 'rm -rf "$root"' EXIT
fail() { echo "install-test: FAIL: $*" >&2; exit 1; }
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive "$@"; }

start=$(date +%s)
mmdebstrap --quiet --variant=apt bookworm "$root"
echo "install-test: chroot in $(($(date +%s) - start)) s"

cp "$deb" "$root/tmp/attuned.deb"
out=$(in_root apt-get install -y -q /tmp/attuned.deb 2>&1) || { echo "$out"; fail "apt-get install"; }
echo "$out" | grep -q 'Setting up attuned' || { echo "$out"; fail "not set up"; }

in_root getent passwd attune | grep -q ':/var/lib/attune:/usr/sbin/nologin$' || fail "user attune: $(in_root getent passwd attune)"
groups=$(in_root id -nG attune)
for g in attune gpio i2c spi video audio; do
	echo " $groups " | grep -q " $g " || fail "attune is not in $g: $groups"
done
[ "$(in_root stat -c '%U %a' /var/lib/attune)" = "attune 700" ] || fail "/var/lib/attune: $(in_root stat -c '%U %a' /var/lib/attune)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/attuned.service" ] || fail "service not enabled"
in_root dpkg-query -W -f='${Conffiles}' attuned | grep -q '/etc/attune/attuned.toml' || fail "no conffile"
in_root attuned version >/dev/null || fail "attuned version"

# Upgrade in place keeps the administrator's conffile.
echo '# mine' >> "$root/etc/attune/attuned.toml"
out=$(in_root dpkg --force-confold -i /tmp/attuned.deb 2>&1) || { echo "$out"; fail "reinstall"; }
grep -q '# mine' "$root/etc/attune/attuned.toml" || fail "upgrade replaced the changed conffile"

touch "$root/var/lib/attune/recording"
in_root apt-get remove -y -q attuned >/dev/null 2>&1 || fail "remove"
[ -e "$root/var/lib/attune/recording" ] || fail "remove deleted the recordings"
[ -e "$root/etc/attune/attuned.toml" ] || fail "remove deleted the conffile"
out=$(in_root apt-get purge -y -q attuned 2>&1) || { echo "$out"; fail "purge"; }
echo "$out" | grep -q 'kept /var/lib/attune' || { echo "$out"; fail "purge did not say it kept the recordings"; }
[ -e "$root/var/lib/attune/recording" ] || fail "purge deleted the recordings unasked"
[ ! -e "$root/etc/attune/attuned.toml" ] || fail "purge kept the conffile"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/attuned.service" ] || fail "purge left the service enabled"

in_root apt-get install -y -q /tmp/attuned.deb >/dev/null 2>&1 || fail "install again"
in_root env ATTUNE_PURGE_RECORDINGS=yes apt-get purge -y -q attuned >/dev/null 2>&1 || fail "purge with ATTUNE_PURGE_RECORDINGS=yes"
[ ! -e "$root/var/lib/attune" ] || fail "ATTUNE_PURGE_RECORDINGS=yes kept /var/lib/attune"

echo "install-test: ok in $(($(date +%s) - start)) s: user, groups, conffile, enabled, upgrade, remove, purge"
