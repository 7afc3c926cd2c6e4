package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/testutil"
)

// TestRunMissingConfigMeansDefaults: `attuned run --config PATH` with no
// file at PATH runs on the defaults and says so once in its log, instead
// of failing (which systemd would turn into a restart loop); a config file
// that is there but bad still stops it with the line and the fix.
func TestRunMissingConfigMeansDefaults(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "etc", "attuned.toml")
	ready := filepath.Join(dir, "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"run", "--config", missing, "--board", "sim", "--data", filepath.Join(dir, "data"),
			"--listen", "127.0.0.1:0", "--panel", "127.0.0.1:0", "--ready-file", ready}, new(bytes.Buffer), &stderr)
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("attuned run with no config file ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("attuned run with no config file not ready after 20 s\n%s", stderr.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("attuned run: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "no config file, running on the defaults"); n != 1 {
		t.Errorf("log says %d times that there is no config file, want once:\n%s", n, stderr.String())
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("data = \n"), 0o600)
	err := Run(context.Background(), []string{"run", "--config", bad}, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "fix that line") {
		t.Errorf("bad config: err = %v, want the line and the fix", err)
	}
}
