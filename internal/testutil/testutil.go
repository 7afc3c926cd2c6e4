// Package testutil holds helpers shared by end-to-end tests: building the
// binaries, keys, the stock age CLI and ffprobe. It is imported only by
// tests.
package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
)

// Tool returns the path of an external tool the tests need. make test
// installs them; a missing one fails the test, except in -short mode.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not installed (-short)", name)
		}
		t.Fatalf("%s not installed: run `make test`, which installs it", name)
	}
	return p
}

// StockAge is Debian's age CLI (X25519 only).
func StockAge(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/age"); err == nil {
		return "/usr/bin/age"
	}
	return Tool(t, "age")
}

// PQAge is an age CLI of version 1.3 or later, for post-quantum files:
// $ATTUNE_AGE_PQ (set by the Makefile) or the repository's .tools/bin/age.
func PQAge(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ATTUNE_AGE_PQ"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	root := RepoRoot(t)
	p := filepath.Join(root, ".tools", "bin", "age")
	if _, err := os.Stat(p); err != nil {
		if testing.Short() {
			t.Skip("age >= 1.3 CLI not installed (-short)")
		}
		t.Fatalf("age >= 1.3 CLI not found: run `make test` (installs filippo.io/age/cmd/...@v1.3.2 into .tools/bin)")
	}
	return p
}

// RepoRoot finds the module root.
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binary builds ./cmd/NAME once per test process and returns its path.
func Binary(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "attune-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", buildDir + "/"}
		if os.Getenv("ATTUNE_TEST_RACE") != "" {
			args = append(args, "-race") // the binaries too, not only the test process
		}
		cmd := exec.Command("go", append(args, "./cmd/...")...)
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{out: out, err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

type buildError struct {
	out []byte
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

// Keys is an age identity written to disk with its recipients file.
type Keys struct {
	Identity       age.Identity
	IdentityFile   string
	RecipientsFile string
	PQ             bool
}

// NewKeys makes an X25519 or post-quantum identity under dir.
func NewKeys(t testing.TB, dir string, pq bool) Keys {
	t.Helper()
	var idStr, rcpt string
	var id age.Identity
	if pq {
		h, err := age.GenerateHybridIdentity()
		if err != nil {
			t.Fatal(err)
		}
		id, idStr, rcpt = h, h.String(), h.Recipient().String()
	} else {
		x, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		id, idStr, rcpt = x, x.String(), x.Recipient().String()
	}
	k := Keys{Identity: id, PQ: pq,
		IdentityFile:   filepath.Join(dir, "identity.txt"),
		RecipientsFile: filepath.Join(dir, "recipients.txt")}
	if err := os.WriteFile(k.IdentityFile, []byte(idStr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.RecipientsFile, []byte("# test recipient\n"+rcpt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// Segments lists a recording's sealed segments in name order.
func Segments(t testing.TB, recDir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(recDir, "[0-9][0-9][0-9][0-9][0-9][0-9].age"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// DecryptCLI decrypts each file with the age CLI at ageBin and returns the
// concatenation, failing the test if any file does not decrypt.
func DecryptCLI(t testing.TB, ageBin string, k Keys, files []string) []byte {
	t.Helper()
	var all bytes.Buffer
	for _, f := range files {
		cmd := exec.Command(ageBin, "-d", "-i", k.IdentityFile, f)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &all, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s -d %s: %v: %s", filepath.Base(ageBin), filepath.Base(f), err, stderr.String())
		}
	}
	return all.Bytes()
}

// Probe is what ffprobe says of a file.
type Probe struct {
	Streams []struct {
		CodecType     string `json:"codec_type"`
		CodecName     string `json:"codec_name"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		SampleRate    string `json:"sample_rate"`
		Channels      int    `json:"channels"`
		StartTime     string `json:"start_time"`
		NbReadFrames  string `json:"nb_read_frames"`
		NbReadPackets string `json:"nb_read_packets"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// FFProbe runs ffprobe with frame counting on path.
func FFProbe(t testing.TB, path string) Probe {
	t.Helper()
	out, err := exec.Command(Tool(t, "ffprobe"), "-v", "error", "-count_frames", "-count_packets",
		"-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return p
}

// FFmpegErrors decodes path completely and returns what ffmpeg printed at
// level error (nothing for a clean file).
func FFmpegErrors(t testing.TB, path string) string {
	t.Helper()
	out, _ := exec.Command(Tool(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	return string(out)
}

// Float parses a number ffprobe printed.
func Float(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// VideoSeconds is the length of the video stream, from its decoded frame
// count at fps (a live stream has no duration in its header).
func VideoSeconds(p Probe, fps float64) float64 {
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			return float64(Int(s.NbReadFrames)) / fps
		}
	}
	return 0
}

// Int parses a count ffprobe printed.
func Int(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// AssertNoPlaintext fails if any 32-byte window of plain occurs in any
// file under the roots. Every 32-byte window of plain contains an aligned
// 16-byte block, so the files are scanned for aligned blocks and each hit
// is checked for a full 32-byte match around it.
func AssertNoPlaintext(t testing.TB, plain []byte, roots ...string) (files int) {
	t.Helper()
	if len(plain) < 32 {
		t.Fatal("plaintext too short to check")
	}
	blocks := map[[16]byte][]int{}
	for off := 0; off+16 <= len(plain); off += 16 {
		var k [16]byte
		copy(k[:], plain[off:])
		if len(blocks[k]) < 8 {
			blocks[k] = append(blocks[k], off)
		}
	}
	for _, root := range roots {
		filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read %s: %v", path, err)
				return nil
			}
			files++
			var k [16]byte
			for i := 0; i+16 <= len(data); i++ {
				copy(k[:], data[i:i+16])
				offs, ok := blocks[k]
				if !ok {
					continue
				}
				for _, off := range offs {
					if commonAround(plain, off, data, i) >= 32 {
						t.Errorf("%s holds plaintext: 32+ bytes at file offset %d equal stream offset %d", path, i, off)
						return nil
					}
				}
			}
			return nil
		})
	}
	return files
}

// commonAround is the length of the common run of a and b through a[i:i+16]
// == b[j:j+16].
func commonAround(a []byte, i int, b []byte, j int) int {
	s := 0
	for i-s-1 >= 0 && j-s-1 >= 0 && a[i-s-1] == b[j-s-1] {
		s++
	}
	e := 16
	for i+e < len(a) && j+e < len(b) && a[i+e] == b[j+e] {
		e++
	}
	return s + e
}
