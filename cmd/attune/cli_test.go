package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"attune.dev/attune/laptop"
)

// TestCommandLine runs attune in-process as a new user types it, against a
// home holding two cases and two recordings whose ids share a prefix.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	homeDir := filepath.Join(dir, "home")
	// A --home that is not honoured would open this one instead.
	decoy := filepath.Join(dir, "decoy")
	t.Setenv("ATTUNE_HOME", decoy)
	home, err := laptop.OpenHome(homeDir)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := home.NewCase("Family A", true, "")
	b, _ := home.NewCase("Family B", true, "")
	if a.ID[:6] == b.ID[:6] {
		t.Skip("the two random case ids share a prefix")
	}
	recA, recB := "3f9c0a7d52e1b864", "3f9c11aa00000000"
	for _, id := range []string{recA, recB} {
		if err := os.MkdirAll(filepath.Join(homeDir, "vault", a.ID, id), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		ok   bool
		want []string // in the output, stdout and stderr together
		not  []string
	}{
		{"version", []string{"version"}, true, []string{"attune "}, nil},
		{"help", []string{"--help"}, true, []string{"attune export RECORDING-ID", "attune version"}, nil},
		{"export help", []string{"export", "--help"}, true, []string{"usage: attune export [flags] RECORDING-ID", "-out"}, nil},
		{"export -h", []string{"export", "-h"}, true, []string{"usage: attune export [flags] RECORDING-ID"}, nil},
		{"case close help", []string{"case", "close", "--help"}, true, []string{"usage: attune case close [flags] CASE", "-retention"}, nil},
		{"case new help", []string{"case", "new", "-help"}, true, []string{"usage: attune case new [flags] LABEL"}, nil},
		{"audit help", []string{"audit", "--help"}, true, []string{"usage: attune audit [flags] CASE"}, nil},
		{"sync help", []string{"sync", "--help"}, true, []string{"usage: attune sync [flags]", "-device"}, nil},
		{"case help", []string{"case", "--help"}, true, []string{"attune case close CASE"}, nil},

		{"flags before", []string{"case", "list", "--home", homeDir, "--json"}, true, []string{a.ID, b.ID}, nil},
		{"home after the argument", []string{"case", "consent", "Family A", "--who", "parent", "--home", homeDir}, true, []string{"consent recorded for case " + a.ID}, nil},
		{"flags around the argument", []string{"case", "consent", "--who", "parent", "Family B", "--home", homeDir, "--clips"}, true, []string{"consent recorded for case " + b.ID}, nil},
		{"after --", []string{"case", "consent", "--home", homeDir, "--who", "parent", "--", "Family A"}, true, []string{"consent recorded for case " + a.ID}, nil},
		{"unknown flag after the argument", []string{"case", "consent", "Family A", "--who", "parent", "--bogus", "--home", homeDir}, false, []string{"flag provided but not defined: -bogus", "usage: attune case consent"}, []string{"consent recorded"}},
		{"extra argument", []string{"list", "extra", "--home", homeDir}, false, []string{`unexpected argument "extra"`}, nil},
		{"label in two words", []string{"case", "consent", "Family", "A", "--who", "parent", "--home", homeDir}, false, []string{`unexpected argument "A"`}, nil},

		{"case id prefix", []string{"case", "consent", a.ID[:6], "--who", "parent", "--shared-review", "--home", homeDir}, true, []string{"consent recorded for case " + a.ID}, nil},
		{"case id prefix too short", []string{"audit", a.ID[:3], "--home", homeDir}, false, []string{"at least 4 characters"}, nil},
		{"recording id prefix", []string{"export", "3f9c0", "--out", filepath.Join(dir, "visit.mkv"), "--home", homeDir}, false, []string{"manifest of " + recA}, []string{"not in the vault"}},
		{"ambiguous recording prefix", []string{"export", "3f9c", "--out", filepath.Join(dir, "visit.mkv"), "--home", homeDir}, false, []string{"ambiguous", recA + ", " + recB}, nil},
		{"recording prefix too short", []string{"export", "3f9", "--out", filepath.Join(dir, "visit.mkv"), "--home", homeDir}, false, []string{"at least 4 characters"}, nil},
		{"unknown recording", []string{"export", "ffffffff", "--out", filepath.Join(dir, "visit.mkv"), "--home", homeDir}, false, []string{"not in the vault"}, nil},

		{"mp4 refused", []string{"export", recA, "--out", filepath.Join(dir, "visit.mp4"), "--home", homeDir}, false, []string{"Matroska", filepath.Join(dir, "visit.mkv")}, nil},
		{"no extension refused", []string{"export", recA, "--out", filepath.Join(dir, "visit"), "--home", homeDir}, false, []string{"FILE.mkv"}, nil},
		{"mka taken", []string{"export", recA, "--out", filepath.Join(dir, "visit.mka"), "--home", homeDir}, false, []string{"manifest of " + recA}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(t.Context(), tc.args, strings.NewReader(""), &out, &out)
			got := out.String()
			if err != nil {
				got += "\nerror: " + err.Error()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("attune %s: error %v, want ok=%v\n%s", strings.Join(tc.args, " "), err, tc.ok, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("attune %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("attune %s: output has %q:\n%s", strings.Join(tc.args, " "), w, got)
				}
			}
		})
	}
	if _, err := os.Stat(decoy); !os.IsNotExist(err) {
		t.Error("a command opened $ATTUNE_HOME although --home was given")
	}
}

// TestHelpOnStdout: help asked for goes to stdout, a usage error's usage to
// stderr.
func TestHelpOnStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := Run(t.Context(), []string{"export", "--help"}, nil, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "usage:") || stderr.Len() != 0 {
		t.Errorf("--help: %v\nstdout %q\nstderr %q", err, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if err := Run(t.Context(), []string{"export", "--bogus"}, nil, &stdout, &stderr); err == nil || stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("--bogus: %v\nstdout %q\nstderr %q", err, stdout.String(), stderr.String())
	}
}

func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"version"}, nil, &out, &out); err != nil || out.String() != "attune v1.2.3\n" {
		t.Errorf("version: %v %q", err, out.String())
	}
}

// TestPassphraseSources: a script gives the passphrase in the environment
// or in a file (its first line); it is read once per process; without
// either, off a terminal, a new key is refused with the way out.
func TestPassphraseSources(t *testing.T) {
	t.Setenv("ATTUNE_PASSPHRASE", "")
	file := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(file, []byte("from a file\r\nsecond line\n"), 0o600)
	t.Setenv("ATTUNE_PASSPHRASE_FILE", file)
	c := &cli{stdin: strings.NewReader(""), stderr: io.Discard}
	if p, err := c.passphrase("? ")(); err != nil || p != "from a file" {
		t.Fatalf("passphrase from a file: %q %v", p, err)
	}
	os.WriteFile(file, []byte("changed\n"), 0o600)
	if p, _ := c.passphrase("? ")(); p != "from a file" {
		t.Fatalf("passphrase read again in one process: %q", p)
	}
	t.Setenv("ATTUNE_PASSPHRASE", "from the environment")
	if p, _ := (&cli{}).passphrase("? ")(); p != "from the environment" {
		t.Fatalf("passphrase from the environment: %q", p)
	}
	t.Setenv("ATTUNE_PASSPHRASE", "")
	t.Setenv("ATTUNE_PASSPHRASE_FILE", "")
	c = &cli{stdin: strings.NewReader(""), stderr: io.Discard}
	if _, err := c.readPassphrase("? ", true); err == nil || !strings.Contains(err.Error(), "--no-passphrase") {
		t.Fatalf("a new key without a passphrase off a terminal: %v", err)
	}
}
