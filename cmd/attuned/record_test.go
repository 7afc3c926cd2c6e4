package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
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

// record runs `attuned record` as a user would, with TMPDIR pointed at tmp
// so the plaintext check also covers temporary files.
func record(t *testing.T, tmp string, args ...string) (id string, stderr string) {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t, "attuned"), append([]string{"record"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("attuned record: %v\n%s", err, errb.String())
	}
	return strings.TrimSpace(out.String()), errb.String()
}

func readIndex(t *testing.T, data, id string) storage.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "recordings", id, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix storage.Index
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestRecordTestsrc is the acceptance test: a 10 s recording from
// the test source, decrypted with nothing but the stock age CLI, plays.
func TestRecordTestsrc(t *testing.T) {
	for _, tc := range []struct {
		name string
		pq   bool
		pace string
	}{
		{"x25519-realtime", false, "realtime"},
		{"pq-fast", true, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			data, tmp := filepath.Join(dir, "data"), filepath.Join(dir, "tmp")
			os.Mkdir(tmp, 0o700)
			k := testutil.NewKeys(t, dir, tc.pq)
			ageBin := testutil.StockAge(t)
			if tc.pq {
				ageBin = testutil.PQAge(t)
			}
			id, _ := record(t, tmp, "--data", data, "--recipients", k.RecipientsFile,
				"--source", "testsrc", "--duration", "10s", "--pace", tc.pace)
			if !custody.ValidID(id) {
				t.Fatalf("record printed %q, want a recording id", id)
			}
			ix := readIndex(t, data, id)
			if ix.State != storage.Complete {
				t.Errorf("state %s, want complete", ix.State)
			}
			segs := testutil.Segments(t, filepath.Join(data, "recordings", id))
			if len(segs) < 9 || len(segs) > 11 || len(segs) != len(ix.Segments) {
				t.Errorf("%d segments on disk, %d in index; want about 10 (one per second)", len(segs), len(ix.Segments))
			}
			plain := testutil.DecryptCLI(t, ageBin, k, segs)
			out := filepath.Join(dir, "out.mkv")
			os.WriteFile(out, plain, 0o600)

			p := testutil.FFProbe(t, out)
			var video, audio bool
			var vStart, aStart float64
			for _, s := range p.Streams {
				switch s.CodecType {
				case "video":
					video = true
					vStart = testutil.Float(s.StartTime)
					if s.CodecName != "mjpeg" || s.Width != 1280 || s.Height != 720 {
						t.Errorf("video %s %dx%d, want mjpeg 1280x720", s.CodecName, s.Width, s.Height)
					}
					t.Logf("%s: %d video frames", tc.name, testutil.Int(s.NbReadFrames))
					if n := testutil.Int(s.NbReadFrames); n < 297 || n > 303 {
						t.Errorf("%d video frames, want 300±3", n)
					}
				case "audio":
					audio = true
					aStart = testutil.Float(s.StartTime)
					if s.CodecName != "pcm_s16le" || s.SampleRate != "48000" || s.Channels != 1 {
						t.Errorf("audio %s %s Hz %d ch, want pcm_s16le 48000 mono", s.CodecName, s.SampleRate, s.Channels)
					}
				}
			}
			if !video || !audio {
				t.Fatalf("streams: video %v audio %v", video, audio)
			}
			t.Logf("%s: %d segments, video starts %.3fs, audio %.3fs", tc.name, len(segs), vStart, aStart)
			if math.Abs(vStart-aStart) > 0.1 {
				t.Errorf("audio starts at %.3fs, video at %.3fs: more than 100 ms apart", aStart, vStart)
			}
			if e := testutil.FFmpegErrors(t, out); e != "" {
				t.Errorf("ffmpeg -v error printed:\n%s", e)
			}
			// The manifest decrypts with the same stock tool.
			man := testutil.DecryptCLI(t, ageBin, k, []string{filepath.Join(data, "recordings", id, "manifest.age")})
			var m storage.Manifest
			if err := json.Unmarshal(man, &m); err != nil || m.ID != id || m.Segments != len(segs) || len(m.Tracks) != 2 {
				t.Errorf("manifest %s: %v", man, err)
			}
			os.Remove(out)
			if n := testutil.AssertNoPlaintext(t, plain, data, tmp); n < len(segs)+2 {
				t.Errorf("checked only %d files", n)
			}
		})
	}
}

// TestKillDuringRecording cuts the power (SIGKILL) at random moments:
// every sealed segment stays valid, at most about a second is lost, and the
// next start marks the recording interrupted and leaves no temp files.
func TestKillDuringRecording(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k := testutil.NewKeys(t, dir, false)
	bin := testutil.Binary(t, "attuned")
	for run := 0; run < 4; run++ {
		cmd := exec.Command(bin, "record", "--data", data, "--recipients", k.RecipientsFile, "--duration", "60s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wait := 2*time.Second + time.Duration(rand.Int64N(int64(3*time.Second)))
		time.Sleep(wait)
		cmd.Process.Signal(syscall.SIGKILL)
		killTime := time.Now()
		cmd.Wait()

		// The next start recovers (any attuned start opens the store).
		rec, _ := record(t, dir, "--data", data, "--recipients", k.RecipientsFile, "--duration", "1s", "--pace", "none")
		ents, _ := os.ReadDir(filepath.Join(data, "recordings"))
		var killed string
		for _, e := range ents {
			if e.Name() == rec {
				continue
			}
			ix := readIndex(t, data, e.Name())
			if ix.State == storage.Interrupted && ix.Seq == uint64(2*run+1) {
				killed = e.Name()
			}
		}
		if killed == "" {
			t.Fatalf("run %d: no interrupted recording after the kill (stderr: %s)", run, stderr.String())
		}
		filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
			if strings.Contains(d.Name(), ".tmp-") {
				t.Errorf("run %d: temp file left after recovery: %s", run, p)
			}
			return nil
		})
		segs := testutil.Segments(t, filepath.Join(data, "recordings", killed))
		plain := testutil.DecryptCLI(t, testutil.StockAge(t), k, segs)
		out := filepath.Join(dir, "killed.mkv")
		os.WriteFile(out, plain, 0o600)
		if e := testutil.FFmpegErrors(t, out); e != "" {
			t.Errorf("run %d: sealed segments do not decode cleanly:\n%s", run, e)
		}
		got := testutil.VideoSeconds(testutil.FFProbe(t, out), 30)
		// The manifest sealed at the start says when recording began.
		var m storage.Manifest
		json.Unmarshal(testutil.DecryptCLI(t, testutil.StockAge(t), k, []string{filepath.Join(data, "recordings", killed, "manifest.age")}), &m)
		if m.Started.IsZero() || m.Ended != nil {
			t.Fatalf("run %d: manifest of the killed recording: %+v", run, m)
		}
		killedAt := killTime.Sub(m.Started)
		lost := killedAt.Seconds() - got
		t.Logf("run %d: killed after %.2fs, %d segments, %.2fs recovered, %.2fs lost", run, killedAt.Seconds(), len(segs), got, lost)
		// One unsealed cluster (1 s), and a little for the first frame.
		if lost > 1.5 || lost < -0.1 {
			t.Errorf("run %d: lost %.2fs, want at most about one second", run, lost)
		}
	}
}

func TestRecordErrors(t *testing.T) {
	dir := t.TempDir()
	k := testutil.NewKeys(t, dir, false)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "--recipients", k.RecipientsFile}, "--data DIR is required"},
		{[]string{"record", "--data", dir}, "--recipients FILE is required"},
		{[]string{"record", "--data", dir, "--recipients", k.IdentityFile}, "line 1"},
		{[]string{"record", "--data", dir, "--recipients", k.RecipientsFile, "--source", "webcam"}, `"testsrc", "file:PATH" or "v4l2:/dev/videoN"`},
		{[]string{"record", "--data", dir, "--recipients", k.RecipientsFile, "--pace", "slow"}, `"realtime" or "none"`},
		{[]string{"record", "--data", dir, "--recipients", k.RecipientsFile, "--source", "file:" + filepath.Join(dir, "nope.mkv")}, "nope.mkv"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		var out, errb bytes.Buffer
		err := Run(context.Background(), tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q on failure", tc.args, out.String())
		}
	}
	// Nothing was recorded by any of them.
	if m, _ := filepath.Glob(filepath.Join(dir, "recordings", "*", "*.age")); len(m) != 0 {
		t.Errorf("failed commands left %d files", len(m))
	}
}
