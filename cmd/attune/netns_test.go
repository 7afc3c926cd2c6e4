package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/testutil"
)

// TestTwoNamespaces puts the device in its own network namespace, joined to
// the laptop's by a veth pair like a USB gadget link: the laptop finds it by
// DNS-SD on that link (no --device), pairs, and syncs across it.
func TestTwoNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("iproute2 not installed")
	}
	n := os.Getpid() % 200
	ns := fmt.Sprintf("attune-t%d", os.Getpid())
	vl, vd := fmt.Sprintf("atl%d", os.Getpid()%100000), fmt.Sprintf("atd%d", os.Getpid()%100000)
	laptopIP, deviceIP := fmt.Sprintf("10.77.%d.2", n), fmt.Sprintf("10.77.%d.1", n)
	run := func(args ...string) error {
		out, err := exec.Command(ipCmd, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", ns); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() { run("netns", "del", ns) })
	for _, step := range [][]string{
		{"link", "add", vl, "type", "veth", "peer", "name", vd},
		{"link", "set", vd, "netns", ns},
		{"addr", "add", laptopIP + "/24", "dev", vl},
		{"link", "set", vl, "up"},
		{"-n", ns, "addr", "add", deviceIP + "/24", "dev", vd},
		{"-n", ns, "link", "set", vd, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := run(step...); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, home: filepath.Join(dir, "home")}
	e.d = testutil.StartDaemonWith(t, []string{ipCmd, "netns", "exec", ns},
		fmt.Sprintf("listen = %q\npanel = %q\ndata = %q\n[link]\ninterfaces = [%q]\n[system]\nlog_level = \"info\"\n",
			deviceIP+":8443", deviceIP+":0", filepath.Join(dir, "data"), vd))
	code := e.d.OpenPairing(t)
	// No --device: found by DNS-SD on the link.
	out, err := e.attune("pair", "--code", code, "--case", "Family N")
	if err != nil || !strings.Contains(out, "paired with device") || !strings.Contains(out, deviceIP) {
		t.Fatalf("pair by discovery: %v\n%s", err, out)
	}
	e.d.WaitState(t, "ready")
	e.d.Record(t, 2500*time.Millisecond)
	res, out, err := e.syncJSON()
	if err != nil || len(res.Recordings) != 1 || !res.Recordings[0].Complete {
		t.Fatalf("sync across namespaces: %v %+v\n%s", err, res, out)
	}
	e.d.Stop(t)
}
