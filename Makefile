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
APT_PACKAGES        := ffmpeg age

# Tests find the post-quantum-capable age CLI here; Debian's age (1.1) is
# the stock tool for X25519.
export ATTUNE_AGE_PQ := $(TOOLBIN)/age

.PHONY: all run test bench build cross lint deps tools fuzz clean demo-clean

all: build

## deps: Debian packages the tests use (ffmpeg/ffprobe, age) and pinned Go tools.
deps: tools
	@missing=""; \
	command -v ffmpeg >/dev/null  || missing="$$missing ffmpeg"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	[ -x /usr/bin/age ]           || missing="$$missing age"; \
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

## cross: static builds for the Pi (arm64: Zero 2 W/3/4/5 on 64-bit OS; armv7: 32-bit OS).
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/ ./cmd/...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-armv7/ ./cmd/...

## run: a 10 s demo recording from the test source, then how to decrypt and play it.
DEMO := $(CURDIR)/demo
run: deps build
	@mkdir -p $(DEMO)
	@[ -f $(DEMO)/identity.txt ] || $(TOOLBIN)/age-keygen -pq -o $(DEMO)/identity.txt 2>/dev/null
	@$(TOOLBIN)/age-keygen -y -o $(DEMO)/recipients.txt $(DEMO)/identity.txt
	@echo "recording 10 s from the test source (1280x720 MJPEG + 1 kHz tone), sealed to $(DEMO)/recipients.txt ..."
	@id=$$($(BIN)/attuned record --data $(DEMO)/data --recipients $(DEMO)/recipients.txt --source testsrc --duration 10s) && \
	dir=$(DEMO)/data/recordings/$$id && \
	echo "recording $$id: $$(ls $$dir/*.age | grep -vc manifest) sealed segments in $$dir" && \
	echo && echo "decrypt and play it (the identity never goes near the device):" && \
	echo "  for f in $$dir/[0-9]*.age; do $(TOOLBIN)/age -d -i $(DEMO)/identity.txt \"\$$f\"; done > $(DEMO)/$$id.mkv" && \
	echo "  ffprobe $(DEMO)/$$id.mkv; ffplay $(DEMO)/$$id.mkv" && \
	echo "  $(TOOLBIN)/age -d -i $(DEMO)/identity.txt $$dir/manifest.age    # what, when, marks"

## test: everything CI checks.
test: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(TOOLBIN)/staticcheck ./...
	$(GO) test -race -count=1 -timeout 30m ./...
	CGO_ENABLED=0 $(GO) build ./...
	$(MAKE) --no-print-directory cross
	$(MAKE) --no-print-directory fuzz

## fuzz: each fuzz target briefly (make fuzz FUZZTIME=5m for longer).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s $$pkg >/dev/null || exit 1; \
	  done; \
	done

lint: tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(TOOLBIN)/staticcheck ./...

## bench: in-process benchmarks, then the recording benchmark against ffmpeg|age (docs/BENCHMARKS.md).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./capture/ ./storage/
	$(GO) run ./internal/benchrec -attuned $(BIN)/attuned -out docs/BENCHMARKS.md

clean:
	rm -rf $(BIN) $(DEMO)
