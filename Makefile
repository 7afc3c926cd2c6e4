# Attune — build, run and test. `make run` and `make test` set up what they
# need on a fresh Debian/Ubuntu machine (apt packages, pinned Go tools).

GO        ?= go
TOOLS     := $(CURDIR)/.tools
TOOLBIN   := $(TOOLS)/bin
BIN       := $(CURDIR)/bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

AGE_VERSION         := v1.3.2
STATICCHECK_VERSION := v0.7.0
APT_PACKAGES        := ffmpeg age chromium systemd lintian

# Tests find the post-quantum-capable age CLI here; Debian's age (1.1) is
# the stock tool for X25519.
export ATTUNE_AGE_PQ := $(TOOLBIN)/age

.PHONY: all run record play demo-key screenshots test bench build cross deb deb-install-test lint deps tools fuzz hil hil-gadget hil-long hil-arm64 hil-armhf clean

all: build

## deps: Debian packages the tests use (ffmpeg/ffprobe, age, chromium, systemd-analyze) and pinned Go tools.
deps: tools
	@missing=""; \
	command -v ffmpeg >/dev/null  || missing="$$missing ffmpeg"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	[ -x /usr/bin/age ]           || missing="$$missing age"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v lintian >/dev/null || missing="$$missing lintian"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

tools: $(TOOLBIN)/age $(TOOLBIN)/staticcheck

$(TOOLBIN)/age:
	GOBIN=$(TOOLBIN) $(GO) install filippo.io/age/cmd/...@$(AGE_VERSION)

$(TOOLBIN)/staticcheck:
	GOBIN=$(TOOLBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## build: the daemon for this machine.
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## cross: static builds of attuned for the Pi (arm64: Zero 2 W/3/4/5 on a 64-bit OS;
## armv7: 32-bit OS) and amd64, and of attune for the practitioner's laptop
## (Windows, macOS on Apple silicon and Intel, Linux); then vet the laptop side
## as Windows and macOS see it.
LAPTOP_PKGS := ./cmd/attune ./laptop ./link ./storage ./custody ./mkv
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/ ./cmd/attuned ./cmd/attune
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-armv7/ ./cmd/attuned ./cmd/attune
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/ ./cmd/attuned ./cmd/attune
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/windows-amd64/ ./cmd/attune
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/darwin-arm64/ ./cmd/attune
	CGO_ENABLED=0 GOOS=darwin GOARCH=amd64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/darwin-amd64/ ./cmd/attune
	GOOS=windows GOARCH=amd64 $(GO) vet $(LAPTOP_PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) vet $(LAPTOP_PKGS)

## deb: Debian packages of attuned for arm64, armhf (Pi) and amd64 (to test with) in bin/
## (packaging/ holds the unit, conffile, udev rules and maintainer scripts).
deb:
	$(GO) run ./internal/mkdeb -out $(BIN) -arch amd64,arm64,armhf

## deb-install-test: the amd64 package installed, upgraded, removed and purged in a fresh
## Debian 12 chroot (mmdebstrap; as root, ~20 s with the mirror near).
deb-install-test:
	@command -v mmdebstrap >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
	rm -f $(BIN)/attuned_*_amd64.deb
	$(GO) run ./internal/mkdeb -out $(BIN) -arch amd64
	$(SUDO) sh packaging/install-test.sh $(BIN)/attuned_*_amd64.deb

## run: the simulated device and the review workspace beside it, already paired (internal/demo/run.sh); Ctrl-C stops both.
DEMO  := $(CURDIR)/demo
PANEL ?= 127.0.0.1:8080
LISTEN ?= 127.0.0.1:8443
# attuned stops if it cannot lock its memory; a developer's make run (not
# root) runs without the lock.
RUN_LOCK := $(shell [ "$$(id -u)" = 0 ] && echo true || echo false)
UI ?= 127.0.0.1:8090
run: deps build demo-key
	@mkdir -p $(DEMO)
	@printf '# written by make run: memory is locked only as root (the unit grants CAP_IPC_LOCK)\n[system]\nlock_memory = %s\n' $(RUN_LOCK) > $(DEMO)/attuned.toml
	@internal/demo/run.sh $(BIN) $(DEMO) $(PANEL) $(LISTEN) $(UI)

demo-key: tools
	@mkdir -p $(DEMO)
	@[ -f $(DEMO)/identity.txt ] || $(TOOLBIN)/age-keygen -pq -o $(DEMO)/identity.txt 2>/dev/null
	@$(TOOLBIN)/age-keygen -y $(DEMO)/identity.txt > $(DEMO)/recipients.txt

## record: one 10 s recording from the test source, no panel.
record: deps build demo-key
	@id=$$($(BIN)/attuned record --data $(DEMO)/data --recipients $(DEMO)/recipients.txt --source testsrc --duration 10s) && \
	echo "recording $$id sealed in $(DEMO)/data/recordings/$$id; decrypt and check it with: make play ID=$$id"

## play: decrypt a demo recording with the stock age CLI into demo/ID.mkv and probe it: one on the
## device (demo/data) or synced by the workspace (demo/home/vault), sealed to demo/identity.txt
## (make record) or to the demo case's key (make run, kept without a passphrase in demo/home/cases).
play:
	@test -n "$(ID)" || { echo "usage: make play ID=<recording id> (ls $(DEMO)/data/recordings $(DEMO)/home/vault/*)"; exit 2; }
	@dir=$$(ls -d $(DEMO)/data/recordings/$(ID) $(DEMO)/home/vault/*/$(ID) 2>/dev/null | head -n 1); \
	test -n "$$dir" || { echo "no recording $(ID) under $(DEMO)/data or $(DEMO)/home/vault"; exit 2; }; \
	ids=""; for k in $(DEMO)/identity.txt $(DEMO)/home/cases/*/identity; do [ -f "$$k" ] && ids="$$ids -i $$k"; done; \
	for f in "$$dir"/[0-9]*.age; do $(TOOLBIN)/age -d $$ids "$$f" || exit 1; done > $(DEMO)/$(ID).mkv || \
	{ echo "could not decrypt $(ID): a case key with a passphrase? export it with: $(BIN)/attune export $(ID) --home $(DEMO)/home --out $(DEMO)/$(ID).mkv"; exit 1; }
	ffprobe -v error -show_entries stream=codec_name,width,height,sample_rate -of compact $(DEMO)/$(ID).mkv
	@echo "play it: ffplay $(DEMO)/$(ID).mkv   (or open it in VLC)"

## screenshots: regenerate docs/panel-*.png from the browser test.
screenshots: deps
	ATTUNE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run TestPanelBrowser ./cmd/attuned
	ATTUNE_SCREENSHOTS=$(CURDIR)/docs $(GO) test -count=1 -run TestWorkspace ./laptop/review

## test: everything CI checks.
test: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(TOOLBIN)/staticcheck ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	CGO_ENABLED=0 $(GO) build ./...
	$(MAKE) --no-print-directory cross
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory hil
	$(MAKE) --no-print-directory deb-install-test

## fuzz: each fuzz target briefly (make fuzz FUZZTIME=5m for longer).
FUZZTIME ?= 10s
FUZZLOG ?= $(or $(TMPDIR),/tmp)/attune-fuzz.log
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg >$(FUZZLOG) 2>&1 || \
	    { ! grep -q 'Failing input written' $(FUZZLOG) && grep -q 'context deadline exceeded' $(FUZZLOG) && \
	      echo "  (the fuzz engine's own deadline on a busy machine, no failing input: once more)" && \
	      $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg >$(FUZZLOG) 2>&1; } || \
	    { tail -40 $(FUZZLOG); exit 1; }; \
	  done; \
	done

lint: tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(TOOLBIN)/staticcheck ./...

## bench: in-process benchmarks, the recording benchmark against ffmpeg|age and the exports
## (attune clip) against ffmpeg, then the sync benchmark against curl|nginx (also followed by
## sync) and scp; writes docs/BENCHMARKS.md and the README's "How fast" figures (it runs
## its own sshd, so as root).
## BENCHSYNC_FLAGS: e.g. "-rounds 3 -quiet 30s" on a busy machine (the report says what was used).
BENCHSYNC_FLAGS ?= -rounds 9
bench: deps build
	@missing=""; \
	[ -x /usr/sbin/sshd ]         || missing="$$missing openssh-server"; \
	command -v scp >/dev/null     || missing="$$missing openssh-client"; \
	[ -x /usr/sbin/nginx ]        || missing="$$missing nginx"; \
	command -v curl >/dev/null    || missing="$$missing curl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	$(GO) test -run '^$$' -bench . -benchmem ./capture/ ./storage/ ./laptop/ ./system/ > $(BIN)/gobench.txt || { cat $(BIN)/gobench.txt; exit 1; }
	cat $(BIN)/gobench.txt
	ATTUNE_REVIEW_BENCH=1 ATTUNE_REVIEW_BENCH_DOC=$(CURDIR)/docs/BENCHMARKS.md $(GO) test -count=1 -run TestReviewBench -v ./laptop/review/ | grep -E 'frame step|FAIL|ok'
	$(GO) run ./internal/benchrec -attuned $(BIN)/attuned -attune $(BIN)/attune -out docs/BENCHMARKS.md -readme README.md -gobench $(BIN)/gobench.txt
	$(GO) run ./internal/benchsync -attuned $(BIN)/attuned -attune $(BIN)/attune $(BENCHSYNC_FLAGS) -out docs/BENCHMARKS.md -readme README.md

## hil: attuned on real kernel drivers (gpio-sim, v4l2loopback, vivid, snd-aloop) in a
## qemu VM with Debian's kernel (docs/HIL.md). The first run installs packages and
## builds modules into .hil/; later runs take about a minute.
HIL := $(CURDIR)/.hil
hil:
	@SUDO=$(SUDO) sh internal/hil/setup.sh $(HIL)
	$(GO) run ./internal/hil -cache $(HIL)

## hil-gadget: the USB link scenario alone (make hil runs it with the others).
hil-gadget:
	@SUDO=$(SUDO) sh internal/hil/setup.sh $(HIL)
	$(GO) run ./internal/hil -cache $(HIL) -only gadget

## hil-long: 15 minutes of 1080p30 MJPEG and 48 kHz sound recorded in the amd64 VM (LONG=15m):
## no frame the driver delivered lost, attuned's peak RSS under 40 MB. Not part of make test.
LONG ?= 15m
hil-long:
	@SUDO=$(SUDO) sh internal/hil/setup.sh $(HIL)
	$(GO) run ./internal/hil -cache $(HIL) -only long -long $(LONG)

## hil-arm64, hil-armhf: the same scenarios on Debian's arm64 kernel (qemu-system-aarch64 -M virt)
## and its armmp-lpae kernel (qemu-system-arm -M virt,highmem=on), modules cross-compiled.
hil-arm64 hil-armhf:
	@SUDO=$(SUDO) sh internal/hil/setup.sh $(HIL) $(@:hil-%=%)
	$(GO) run ./internal/hil -cache $(HIL) -arch $(@:hil-%=%)

clean:
	rm -rf $(BIN) $(DEMO) $(HIL)
