package main

import (
	"bytes"
	"context"
	"errors"
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
	if os.Geteuid() != 0 { // the defaults lock memory, which needs root or CAP_IPC_LOCK
		orig := lockMemoryFunc
		defer func() { lockMemoryFunc = orig }()
		lockMemoryFunc = func() error { return nil }
	}
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

// TestRunMemoryLockFatal: a daemon that cannot lock its memory stops with
// the fix in the error, unless the config says lock_memory = false.
func TestRunMemoryLockFatal(t *testing.T) {
	called := 0
	orig := lockMemoryFunc
	defer func() { lockMemoryFunc = orig }()
	lockMemoryFunc = func() error {
		called++
		return errors.New("lock memory: mlockall: operation not permitted; give the daemon CAP_IPC_LOCK")
	}
	dir := t.TempDir()
	args := []string{"run", "--board", "sim", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--panel", "127.0.0.1:0"}
	bounded, stop := context.WithTimeout(context.Background(), 20*time.Second) // before the fix it ran on
	defer stop()
	err := Run(bounded, args, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "CAP_IPC_LOCK") || called != 1 {
		t.Fatalf("run without a memory lock: %v (lock tried %d times), want it to stop naming the fix", err, called)
	}

	// lock_memory = false: the lock is not tried, and the daemon runs.
	cfg := filepath.Join(dir, "attuned.toml")
	os.WriteFile(cfg, []byte("[system]\nlock_memory = false\n"), 0o600)
	ready := filepath.Join(dir, "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append(args, "--config", cfg, "--ready-file", ready), new(bytes.Buffer), new(bytes.Buffer))
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run with lock_memory = false ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("run with lock_memory = false not ready after 20 s")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if called != 1 {
		t.Errorf("lock tried with lock_memory = false")
	}
}
