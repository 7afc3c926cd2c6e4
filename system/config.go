package system

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"attune.dev/attune/capture"
	"attune.dev/attune/v4l2"
)

// Config is attuned's configuration, read from a TOML file. Every key is
// optional; Validate checks each and names the key and the fix.
type Config struct {
	// Board is the board profile: "sim" or a profile name or file.
	Board string `toml:"board"`
	// Data is the data directory holding recordings.
	Data string `toml:"data"`
	// Recipients is a file of age recipients (until pairing provides them).
	Recipients string `toml:"recipients"`
	// Listen is the address of the paired-link API.
	Listen string `toml:"listen"`
	// Panel is the address of the simulated board's front panel.
	Panel string `toml:"panel"`

	Capture CaptureConfig `toml:"capture"`
	Storage StorageConfig `toml:"storage"`
	System  SystemConfig  `toml:"system"`
	Link    LinkConfig    `toml:"link"`
}

// LinkConfig is about the paired link.
type LinkConfig struct {
	// Interfaces the paired link is for (default ["usb0"], USB gadget
	// Ethernet). A listen address without a host (":8443") listens on
	// their addresses only — not on loopback or any other interface — and
	// the device announces itself with DNS-SD (_attune._tcp) on those of
	// them that exist. Empty: no announcement (the laptop gives --device
	// HOST:PORT), and listen must name a host.
	Interfaces []string `toml:"interfaces"`
	// USBGadget makes the USB OTG port the link to the laptop: `attuned
	// gadget` (attune-gadget.service) makes an NCM network gadget, gives
	// the device 192.168.7.1 and the laptop 192.168.7.2 by DHCP. Off by
	// default; the Debian package's configuration turns it on.
	USBGadget bool `toml:"usb_gadget"`
}

// CaptureConfig chooses the sources.
type CaptureConfig struct {
	// Source: "testsrc", "file:PATH" or "v4l2:/dev/videoN".
	Source string `toml:"source"`
	// Audio: "auto", "none", "testsrc" or "alsa:NAME" ("alsa:" = default).
	Audio string `toml:"audio"`
	// Modes is the camera's preferred modes, "WIDTHxHEIGHT@FPS", best first.
	Modes []string `toml:"modes"`
	// Pace for file and test sources: "realtime" or "none".
	Pace string `toml:"pace"`
}

// StorageConfig bounds recordings.
type StorageConfig struct {
	// MinFreeMB is the free space floor: no recording starts below it and a
	// running one ends before it.
	MinFreeMB int `toml:"min_free_mb"`
	// MaxMinutes is the longest a recording may run.
	MaxMinutes float64 `toml:"max_minutes"`
	// SegmentSeconds is the flush interval: the most footage a power cut loses.
	SegmentSeconds float64 `toml:"segment_seconds"`
}

// SystemConfig is about the process.
type SystemConfig struct {
	// LockMemory keeps plaintext out of swap (mlockall).
	LockMemory bool `toml:"lock_memory"`
	// LogLevel: "debug", "info", "warn" or "error".
	LogLevel string `toml:"log_level"`
}

// DefaultConfig is what an empty config file means.
func DefaultConfig() Config {
	return Config{
		Board:  "pi-ref",
		Data:   "/var/lib/attune",
		Listen: ":8443",
		Panel:  "127.0.0.1:8080",
		Capture: CaptureConfig{
			Source: "testsrc",
			Audio:  "auto",
			Pace:   "realtime",
		},
		Storage: StorageConfig{MinFreeMB: 64, MaxMinutes: 30, SegmentSeconds: 1},
		Link:    LinkConfig{Interfaces: []string{"usb0"}},
		System:  SystemConfig{LockMemory: true, LogLevel: "info"},
	}
}

// LoadConfig reads a TOML config file over the defaults and validates it.
// An empty path means the defaults; a path where there is no file is an
// error (wrapping fs.ErrNotExist): LoadConfigOrDefaults is the daemon's
// reading, for which no file means the defaults.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, cfg.Validate()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("config %s: %w; give the path of attuned's TOML file", path, err)
	}
	if err != nil {
		return cfg, fmt.Errorf("config %s: cannot read it: %w; it must be a file the user attuned runs as can read (sudo chmod 644 %s)", path, err, path)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %v; fix that line (README.md lists every key and its values)", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown key %s (known keys are listed in the README; check the spelling and the [section])", path, strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfigOrDefaults is LoadConfig for the daemon: no file at path means
// the defaults, and found is false (the daemon says so in its log, then
// runs). The service's unit names a config file the package ships, but an
// administrator who removed it should get a running device, not a restart
// loop. Any other problem with the file (unreadable, not TOML, a bad key)
// is still an error naming the key and the fix.
func LoadConfigOrDefaults(path string) (cfg Config, found bool, err error) {
	cfg, err = LoadConfig(path)
	if path != "" && errors.Is(err, fs.ErrNotExist) {
		cfg = DefaultConfig()
		return cfg, false, cfg.Validate()
	}
	return cfg, path != "", err
}

var modeRE = regexp.MustCompile(`^([0-9]{2,5})x([0-9]{2,5})@([0-9]+(?:\.[0-9]+)?)$`)

// ParseMode parses "1280x720@30".
func ParseMode(s string) (v4l2.Mode, error) {
	m := modeRE.FindStringSubmatch(s)
	if m == nil {
		return v4l2.Mode{}, fmt.Errorf("mode %q: want WIDTHxHEIGHT@FPS, like 1280x720@30", s)
	}
	w, _ := strconv.Atoi(m[1])
	h, _ := strconv.Atoi(m[2])
	fps, _ := strconv.ParseFloat(m[3], 64)
	if fps <= 0 || fps > 240 {
		return v4l2.Mode{}, fmt.Errorf("mode %q: frame rate must be between 1 and 240", s)
	}
	return v4l2.Mode{Width: w, Height: h, FPS: fps}, nil
}

// Validate checks every key; the error names the key and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Board == "" {
		bad("board", `must be set: "sim" for the simulated board or "pi-ref" for the reference wiring`)
	}
	if c.Data == "" {
		bad("data", "must be a directory for recordings, e.g. /var/lib/attune")
	}
	if err := CheckSource(c.Capture.Source); err != nil {
		bad("capture.source", "%v", err)
	}
	if err := CheckAudio(c.Capture.Audio); err != nil {
		bad("capture.audio", "%v", err)
	}
	for _, m := range c.Capture.Modes {
		if _, err := ParseMode(m); err != nil {
			bad("capture.modes", "%v", err)
		}
	}
	if _, err := capture.ParsePace(c.Capture.Pace); err != nil {
		bad("capture.pace", "%v", err)
	}
	if c.Storage.MinFreeMB < 1 || c.Storage.MinFreeMB > 1<<20 {
		bad("storage.min_free_mb", "must be between 1 and 1048576 (MB), got %d; 64 suits an SD card", c.Storage.MinFreeMB)
	}
	if c.Storage.MaxMinutes <= 0 || c.Storage.MaxMinutes > 24*60 {
		bad("storage.max_minutes", "must be more than 0 and at most 1440, got %v; 30 suits a home visit", c.Storage.MaxMinutes)
	}
	if c.Storage.SegmentSeconds < 0.2 || c.Storage.SegmentSeconds > 10 {
		bad("storage.segment_seconds", "must be between 0.2 and 10, got %v; 1 is the default (a power cut loses at most this much)", c.Storage.SegmentSeconds)
	}
	if host, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", `must be an address for the paired link, e.g. ":8443" (the link interfaces' addresses) or "192.168.7.2:8443"`)
	} else if host == "" && len(c.Link.Interfaces) == 0 {
		bad("listen", `%q has no host, so it listens on link.interfaces, which is empty: name them (e.g. ["usb0"]) or give a host ("0.0.0.0:8443" for every interface)`, c.Listen)
	}
	for _, ifc := range c.Link.Interfaces {
		if ifc == "" || strings.ContainsAny(ifc, " /") {
			bad("link.interfaces", "%q is not a network interface name (like usb0 or wlan0)", ifc)
		}
	}
	switch c.System.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("system.log_level", `must be "debug", "info", "warn" or "error", got %q`, c.System.LogLevel)
	}
	return errors.Join(errs...)
}

// CheckSource validates a video source spec.
func CheckSource(s string) error {
	switch {
	case s == "testsrc":
		return nil
	case strings.HasPrefix(s, "file:") && len(s) > len("file:"):
		return nil
	case strings.HasPrefix(s, "v4l2:/dev/"):
		return nil
	}
	return fmt.Errorf(`%q is not a source; use "testsrc", "file:PATH" or "v4l2:/dev/videoN"`, s)
}

// CheckAudio validates an audio source spec.
func CheckAudio(s string) error {
	switch {
	case s == "auto", s == "none", s == "testsrc", strings.HasPrefix(s, "alsa:"):
		return nil
	}
	return fmt.Errorf(`%q is not an audio source; use "auto", "none", "testsrc" or "alsa:NAME" (such as "alsa:hw:1,0"; "alsa:" is auto)`, s)
}

// MaxDuration is the configured recording limit.
func (c *Config) MaxDuration() time.Duration {
	return time.Duration(c.Storage.MaxMinutes * float64(time.Minute))
}

// SegmentDuration is the configured flush interval.
func (c *Config) SegmentDuration() time.Duration {
	return time.Duration(c.Storage.SegmentSeconds * float64(time.Second))
}
