// Command mkdeb builds attuned's Debian packages: a static build of
// ./cmd/attuned per architecture (amd64 to test with, arm64 and armhf for
// the Pi), with the systemd unit, the conffile, the udev rules and the
// maintainer scripts of packaging/, into one .deb each. `make deb` runs it.
//
//	go run ./internal/mkdeb [-out bin] [-arch amd64,arm64,armhf] [-root .]
//
// The package version comes from `git describe --always --dirty` (see
// DebianVersion). nfpm writes the .deb; nothing here needs dpkg.
//
// It must never decide what is in the package beyond packaging/ and the
// binary: the unit, scripts and conffile are reviewed there, as files.
package main
