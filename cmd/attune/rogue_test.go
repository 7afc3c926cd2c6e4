package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
	"attune.dev/attune/storage"
)

// TestRogueDeviceOutput: what attune prints after talking to a device
// that sends escape sequences in its ids holds no control character, and
// nothing lands outside --home.
func TestRogueDeviceOutput(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	b, err := linktest.NewBackend(filepath.Join(dir, "device"))
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	srv := &link.Server{Backend: b, Key: key, Name: "attune-test", Log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := ln.Addr().String()

	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := Run(t.Context(), append(args, "--home", home), strings.NewReader(""), &out, &out)
		got := out.String()
		if err != nil {
			got += "\nattune: " + err.Error() + "\n" // as main prints it
		}
		for i, r := range got {
			if r != '\n' && (r < 0x20 || r >= 0x7f && r < 0xa0) {
				t.Fatalf("attune %s printed control character %q at %d:\n%q", args[0], r, i, got)
			}
		}
		return got
	}

	// Pairing with a device whose id is an escape sequence and a path.
	b.SetDeviceID("\x1b]0;pwned\x07/../../x")
	b.OpenWindow("123456")
	if out := run("pair", "--device", addr, "--code", "123456", "--case", "A", "--x25519", "--no-passphrase"); !strings.Contains(out, "16 lowercase hex digits") {
		t.Fatalf("pair with a rogue device id:\n%s", out)
	}

	// Paired with a well-formed id, then it lists a recording under an
	// escape sequence.
	b.SetDeviceID("0123456789abcdef")
	b.OpenWindow("654321")
	if out := run("pair", "--device", addr, "--code", "654321", "--case", "B", "--x25519", "--no-passphrase"); !strings.Contains(out, "paired with device 0123456789abcdef") {
		t.Fatalf("pair:\n%s", out)
	}
	if _, err := linktest.Record(b.Storage(), b.Case().Parsed, []byte("one")); err != nil {
		t.Fatal(err)
	}
	b.RewriteListing(func(ix *storage.Index) { ix.ID = "\x1b[2J\x1b[31m../../x" })
	if out := run("sync", "--device", addr); !strings.Contains(out, "malformed index") {
		t.Fatalf("sync with a rogue recording id:\n%s", out)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "home" && e.Name() != "device" {
			t.Errorf("written outside --home: %s", e.Name())
		}
	}
}
