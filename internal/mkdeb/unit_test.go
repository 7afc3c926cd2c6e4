package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unitPath = "../../packaging/attuned.service"

// needAnalyze returns systemd-analyze's path; it skips the test only with
// -short (make deps installs it: Debian's systemd package).
func needAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if testing.Short() {
			t.Skip("no systemd-analyze (apt-get install systemd)")
		}
		t.Fatal("no systemd-analyze: apt-get install systemd (make deps does), or go test -short")
	}
	return p
}

// unitCopy writes the unit with ExecStart pointing at an executable that
// exists, as systemd-analyze verify wants, and returns its path.
func unitCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "attuned")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "ExecStart=/usr/bin/attuned ", "ExecStart="+bin+" ", 1)
	if s == string(b) {
		t.Fatal("unit has no ExecStart=/usr/bin/attuned")
	}
	p := filepath.Join(dir, "attuned.service")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUnitVerify: systemd-analyze verify says nothing about the unit (it
// exits 0 on unknown keys, so any output is a failure).
func TestUnitVerify(t *testing.T) {
	analyze := needAnalyze(t)
	out, err := exec.Command(analyze, "verify", unitCopy(t)).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)

// TestUnitSecurity: systemd-analyze security rates the unit "OK" or better.
// systemd 252 (Debian 12) gives 2.3; what keeps it there is the network
// (the paired link), the devices (camera, microphone, GPIO, I2C, SPI), and
// the two capabilities attuned needs (CAP_SYS_TIME, CAP_IPC_LOCK).
func TestUnitSecurity(t *testing.T) {
	analyze := needAnalyze(t)
	out, err := exec.Command(analyze, "security", "--no-pager", "--offline=true", unitCopy(t)).CombinedOutput()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v, no exposure level in:\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	// "OK" is below 5 on systemd's scale; 3 leaves room for other systemd
	// versions' weights and still catches a lost protection.
	if score > 3.0 {
		t.Errorf("exposure %s %s, want at most 3.0; the ✗ lines:\n%s", m[1], m[2], crosses(out))
	}
}

func crosses(out []byte) string {
	var b strings.Builder
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "✗") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// unitKeys reads the unit's Key=value lines (a key may repeat).
func unitKeys(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("unit line %q is not Key=value", l)
		}
		keys[k] = append(keys[k], v)
	}
	return keys
}

// TestUnitContract pins what the rest of attuned relies on: who it runs as,
// the capabilities and nothing more, the devices, the state directory, and
// that a device without usb0 still boots (After= only, no Wants=/Requires=).
func TestUnitContract(t *testing.T) {
	k := unitKeys(t)
	want := map[string]string{
		"Type":                    "notify",
		"User":                    "attune",
		"Group":                   "attune",
		"AmbientCapabilities":     "CAP_SYS_TIME CAP_IPC_LOCK",
		"CapabilityBoundingSet":   "CAP_SYS_TIME CAP_IPC_LOCK",
		"LimitMEMLOCK":            "infinity",
		"DevicePolicy":            "closed",
		"StateDirectory":          "attune",
		"ProtectSystem":           "strict",
		"Restart":                 "always",
		"UMask":                   "0077",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"ExecStart":               "/usr/bin/attuned run --config /etc/attune/attuned.toml",
	}
	for key, v := range want {
		if got := k[key]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", key, got, v)
		}
	}
	for _, dev := range []string{"char-gpiochip rw", "char-i2c rw", "char-spi rw", "char-video4linux rw", "char-alsa rw"} {
		if !slices.Contains(k["DeviceAllow"], dev) {
			t.Errorf("DeviceAllow lacks %q: %q", dev, k["DeviceAllow"])
		}
	}
	if !strings.Contains(strings.Join(k["After"], " "), "sys-subsystem-net-devices-usb0.device") {
		t.Errorf("After = %q, want it to order after usb0", k["After"])
	}
	for _, key := range []string{"Wants", "Requires", "BindsTo"} {
		if strings.Contains(strings.Join(k[key], " "), "usb0") {
			t.Errorf("%s = %q: a device without usb0 would not start attuned", key, k[key])
		}
	}
	if v := k["ProtectClock"]; len(v) > 0 {
		t.Errorf("ProtectClock = %q: attuned sets the clock from the paired laptop", v)
	}
	if !strings.Contains(strings.Join(k["SystemCallFilter"], " "), "@clock") {
		t.Errorf("SystemCallFilter = %q lacks @clock (clock_settime, adjtimex)", k["SystemCallFilter"])
	}
}
