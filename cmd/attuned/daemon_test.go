package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/storage"
)

type daemon = testutil.Daemon

func startDaemon(t *testing.T, config string, args ...string) *daemon {
	t.Helper()
	return testutil.StartDaemon(t, config, args...)
}

func alive(d *daemon) bool { return d.Cmd.Process.Signal(syscall.Signal(0)) == nil }

func recordings(t *testing.T, data string) []storage.Index {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(data, "recordings"))
	var out []storage.Index
	for _, e := range ents {
		if custody.ValidID(e.Name()) {
			out = append(out, readIndex(t, data, e.Name()))
		}
	}
	return out
}

// TestDaemonSIGTERMSeals: SIGTERM during a recording seals it and exits 0.
func TestDaemonSIGTERMSeals(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	d := startDaemon(t, fmt.Sprintf("data = %q\nrecipients = %q\n[capture]\nsource = \"testsrc\"\n", data, k.RecipientsFile))
	d.Cmd.Process.Signal(syscall.SIGUSR1) // REC
	d.WaitLog(t, "recording started", 5*time.Second)
	time.Sleep(2500 * time.Millisecond)
	d.Stop(t)
	recs := recordings(t, data)
	if len(recs) != 1 || recs[0].State != storage.Complete {
		t.Fatalf("recordings after SIGTERM: %+v", recs)
	}
	segs := testutil.Segments(t, filepath.Join(data, "recordings", recs[0].ID))
	plain := testutil.DecryptCLI(t, testutil.StockAge(t), k, segs)
	out := filepath.Join(dir, "out.mkv")
	os.WriteFile(out, plain, 0o600)
	if e := testutil.FFmpegErrors(t, out); e != "" {
		t.Fatalf("sealed recording does not decode: %s", e)
	}
	if s := testutil.VideoSeconds(testutil.FFProbe(t, out), 30); s < 2 || s > 3.5 {
		t.Errorf("recorded %.2fs in 2.5s", s)
	}
}

// mountSmallFS mounts a tmpfs of size bytes at dir (root only).
func mountSmallFS(t *testing.T, dir string, size int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root (CI runs as root)")
	}
	os.MkdirAll(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "attune-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// TestDaemonDiskFull: the data dir is a small filesystem that fills up
// mid-recording. The recording ends cleanly with every segment sealed, the
// daemon keeps running, refuses to start another, and exits cleanly.
func TestDaemonDiskFull(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	mountSmallFS(t, data, 24<<20)
	k := testutil.NewKeys(t, dir, false)
	d := startDaemon(t, fmt.Sprintf(`data = %q
recipients = %q
[capture]
source = "testsrc"
pace = "none"
[storage]
min_free_mb = 2
[system]
log_level = "info"
`, data, k.RecipientsFile))
	d.Cmd.Process.Signal(syscall.SIGUSR1)
	d.WaitLog(t, "storage full", 30*time.Second)
	d.WaitLog(t, "recording sealed", 10*time.Second)
	if !alive(d) {
		t.Fatalf("daemon died on a full disk:\n%s", d.Log.String())
	}
	recs := recordings(t, data)
	if len(recs) != 1 || recs[0].State != storage.Complete || len(recs[0].Segments) < 3 {
		t.Fatalf("after the disk filled: %+v", recs)
	}
	segs := testutil.Segments(t, filepath.Join(data, "recordings", recs[0].ID))
	if len(segs) != len(recs[0].Segments) {
		t.Errorf("%d segments on disk, %d in the index", len(segs), len(recs[0].Segments))
	}
	plain := testutil.DecryptCLI(t, testutil.StockAge(t), k, segs)
	out := filepath.Join(dir, "full.mkv")
	os.WriteFile(out, plain, 0o600)
	if e := testutil.FFmpegErrors(t, out); e != "" {
		t.Errorf("sealed segments damaged: %s", e)
	}
	t.Logf("disk full after %d segments, %.1fs of video", len(segs), testutil.VideoSeconds(testutil.FFProbe(t, out), 30))

	// REC again until the daemon refuses: each new recording ends cleanly on
	// the little space left, then the floor refuses a start. It keeps running.
	refused := false
	for i := 0; i < 5 && !refused; i++ {
		before := strings.Count(d.Log.String(), "recording sealed")
		d.Cmd.Process.Signal(syscall.SIGUSR1)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			log := d.Log.String()
			if strings.Count(log, "recording refused") > 0 {
				refused = true
				break
			}
			if strings.Count(log, "recording sealed") > before {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatalf("daemon never refused to record on a full disk:\n%s", d.Log.String())
	}
	for _, ix := range recordings(t, data) {
		if ix.State != storage.Complete {
			t.Errorf("recording %s is %s", ix.ID, ix.State)
		}
	}
	if !alive(d) {
		t.Fatal("daemon died")
	}
	d.Stop(t)
}
