package system

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "attuned.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValid(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `
board = "sim"
data = "/tmp/x"
recipients = "/etc/r.txt"
[capture]
source = "v4l2:/dev/video2"
audio = "alsa:USB"
modes = ["1920x1080@30", "1280x720@29.97"]
pace = "none"
[storage]
min_free_mb = 100
max_minutes = 15
segment_seconds = 0.5
[system]
lock_memory = false
log_level = "debug"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Board != "sim" || cfg.Capture.Source != "v4l2:/dev/video2" || cfg.MaxDuration().Minutes() != 15 ||
		cfg.SegmentDuration().Seconds() != 0.5 || cfg.System.LockMemory || cfg.Listen != ":8443" {
		t.Errorf("cfg = %+v", cfg)
	}
	m, _ := ParseMode(cfg.Capture.Modes[1])
	if m.Width != 1280 || m.Height != 720 || m.FPS != 29.97 {
		t.Errorf("mode = %+v", m)
	}
	if _, err := LoadConfig(""); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestConfigErrorsNameKeyAndFix(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"bord = \"sim\"\n", `unknown key bord`},
		{"[storage]\nmax_minute = 3\n", `unknown key storage.max_minute`},
		{"[storage]\nmax_minutes = -3\n", `storage.max_minutes: must be more than 0`},
		{"[storage]\nmin_free_mb = 0\n", `storage.min_free_mb: must be between 1 and`},
		{"[storage]\nsegment_seconds = 60\n", `storage.segment_seconds: must be between 0.2 and 10`},
		{"[capture]\nsource = \"/dev/video0\"\n", `capture.source: "/dev/video0" is not a source; use "testsrc"`},
		{"[capture]\naudio = \"mic\"\n", `capture.audio: "mic" is not an audio source`},
		{"[capture]\nmodes = [\"720p\"]\n", `capture.modes: mode "720p": want WIDTHxHEIGHT@FPS`},
		{"[capture]\npace = \"fast\"\n", `capture.pace: pace must be "realtime" or "none"`},
		{"[system]\nlog_level = \"loud\"\n", `system.log_level: must be "debug"`},
		{"data = \n", `line 2`},                               // syntax error names the line
		{"[storage]\nmax_minutes = \"ten\"\n", `max_minutes`}, // wrong type names the key
	} {
		_, err := LoadConfig(writeConfig(t, tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.conf, err, tc.want)
		}
	}
}

func TestClockSet(t *testing.T) {
	c := &Clock{Now: func() time.Time { return time.Unix(0, 0) }} // a Pi at boot
	if w, trusted := c.Wall(); trusted || w.Year() != 1970 {
		t.Fatalf("boot clock trusted: %v %v", w, trusted)
	}
	if err := c.Set(time.Unix(1000, 0)); err == nil {
		t.Fatal("a 1970 time from the laptop was accepted")
	}
	want := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if err := c.Set(want); err != nil {
		t.Fatal(err)
	}
	if w, trusted := c.Wall(); !trusted || !w.Equal(want) {
		t.Fatalf("after set: %v %v", w, trusted)
	}
}

// TestConfigMissingMeansDefaults: the daemon's config path with no file
// there runs on the defaults (found is false so the daemon can say so);
// an unreadable file, a directory or bad TOML stay errors that say what
// to do.
func TestConfigMissingMeansDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, found, err := LoadConfigOrDefaults(filepath.Join(dir, "attuned.toml"))
	if err != nil || found {
		t.Fatalf("missing file: found %v, err %v; want the defaults", found, err)
	}
	if want := DefaultConfig(); cfg.Board != want.Board || cfg.Data != want.Data || cfg.Listen != want.Listen {
		t.Errorf("missing file: cfg = %+v, want the defaults", cfg)
	}
	// LoadConfig itself still says the file is not there.
	if _, err := LoadConfig(filepath.Join(dir, "attuned.toml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadConfig of a missing file: err = %v", err)
	}
	cfg, found, err = LoadConfigOrDefaults(writeConfig(t, "board = \"sim\"\n"))
	if err != nil || !found || cfg.Board != "sim" {
		t.Errorf("present file: board %q, found %v, err %v", cfg.Board, found, err)
	}
	bad := writeConfig(t, "data = \n")
	if _, _, err := LoadConfigOrDefaults(bad); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "fix that line") {
		t.Errorf("bad TOML: err = %v, want the line and the fix", err)
	}
	if _, _, err := LoadConfigOrDefaults(dir); err == nil || !strings.Contains(err.Error(), "cannot read it") {
		t.Errorf("a directory: err = %v, want cannot read it", err)
	}
	if os.Geteuid() != 0 { // root reads anything
		unreadable := writeConfig(t, "board = \"sim\"\n")
		os.Chmod(unreadable, 0)
		if _, _, err := LoadConfigOrDefaults(unreadable); err == nil || !strings.Contains(err.Error(), "chmod 644") {
			t.Errorf("unreadable: err = %v, want the fix", err)
		}
	}
}
