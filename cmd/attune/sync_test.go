package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/internal/testutil"
	"attune.dev/attune/laptop"
	"attune.dev/attune/storage"
)

type env struct {
	t    *testing.T
	dir  string
	home string
	d    *testutil.Daemon
}

// newPaired starts a simulated device and pairs a fresh laptop home with it.
func newPaired(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, home: filepath.Join(dir, "home")}
	e.d = testutil.StartDaemon(t, fmt.Sprintf("data = %q\n[system]\nlog_level = \"info\"\n", filepath.Join(dir, "data")))
	if p := e.d.PanelState(t); p.State != "not_paired" {
		t.Fatalf("new device: %+v", p)
	}
	code := e.d.OpenPairing(t)
	wrong := fmt.Sprintf("%06d", (atoiOr(code)+1)%1000000)
	if out, err := e.attune("pair", "--device", e.d.Link, "--code", wrong, "--case", "Family A"); err == nil || !strings.Contains(out, "wrong code") {
		t.Fatalf("pairing with a wrong code: %v %s", err, out)
	}
	// The case key is protected by default: without a passphrase (and not
	// on a terminal) nothing is paired, and the error says what to do.
	if out, err := e.attuneEnv([]string{"ATTUNE_PASSPHRASE="}, "pair", "--device", e.d.Link, "--code", code, "--case", "Family A"); err == nil || !strings.Contains(out, "--no-passphrase") {
		t.Fatalf("pairing without a passphrase: %v %s", err, out)
	}
	out, err := e.attune("pair", "--device", e.d.Link, "--code", code, "--case", "Family A")
	if err != nil || !strings.Contains(out, "paired with device") {
		t.Fatalf("pair: %v\n%s", err, out)
	}
	ids, _ := filepath.Glob(filepath.Join(e.home, "cases", "*", "identity"))
	for _, p := range ids {
		if raw, _ := os.ReadFile(p); len(ids) != 1 || bytes.Contains(raw, []byte("AGE-SECRET-KEY")) {
			t.Fatalf("case key %s (of %d) in plain text by default", p, len(ids))
		}
	}
	e.d.WaitState(t, "ready")
	return e
}

// testPassphrase protects the case keys the tests make, as a script gives
// it.
const testPassphrase = "correct horse battery staple"

func atoiOr(s string) int {
	n := 0
	fmt.Sscanf(s, "%d", &n)
	return n
}

// attune runs the CLI as a user would and returns stdout+stderr.
func (e *env) attune(args ...string) (string, error) {
	e.t.Helper()
	return e.attuneEnv(nil, args...)
}

// attuneEnv runs attune with env added to the test's environment.
func (e *env) attuneEnv(env []string, args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command(testutil.Binary(e.t, "attune"), append(args, "--home", e.home)...)
	cmd.Env = append(append(os.Environ(), "ATTUNE_HOME=", "ATTUNE_PASSPHRASE="+testPassphrase, "ATTUNE_PASSPHRASE_FILE="), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// syncJSON runs attune sync --json and returns the result object.
func (e *env) syncJSON(args ...string) (laptop.SyncResult, string, error) {
	e.t.Helper()
	out, err := e.attune(append([]string{"sync", "--json"}, args...)...)
	var res laptop.SyncResult
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"event":"result"`) {
			if jerr := json.Unmarshal(sc.Bytes(), &res); jerr != nil {
				e.t.Fatalf("result line: %v", jerr)
			}
		}
	}
	return res, out, err
}

func (e *env) deviceRecordings() []string {
	ents, _ := os.ReadDir(filepath.Join(e.d.Data, "recordings"))
	var ids []string
	for _, en := range ents {
		if custody.ValidID(en.Name()) {
			ids = append(ids, en.Name())
		}
	}
	return ids
}

// TestPairRecordSyncExport is the practitioner's day: pair, record with a
// mark, sync, list, export a file that plays with the mark as a chapter.
func TestPairRecordSyncExport(t *testing.T) {
	e := newPaired(t)
	e.d.Record(t, 4*time.Second, 2*time.Second)
	ids := e.deviceRecordings()
	if len(ids) != 1 {
		t.Fatalf("device holds %v", ids)
	}
	id := ids[0]
	res, out, err := e.syncJSON()
	if err != nil || len(res.Recordings) != 1 || !res.Recordings[0].Complete || !res.ClockSet {
		t.Fatalf("sync: %v %+v\n%s", err, res, out)
	}
	if got := e.deviceRecordings(); len(got) != 0 {
		t.Errorf("device still holds %v after every segment was acknowledged", got)
	}
	// Sync again: nothing to do.
	res2, _, err := e.syncJSON()
	if err != nil || len(res2.Recordings) != 0 || res2.Bytes != 0 {
		t.Errorf("second sync: %v %+v", err, res2)
	}

	out, err = e.attune("list", "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	var list struct {
		Cases      []struct{ Label string }
		Recordings []struct {
			ID      string
			Synced  bool
			Marks   []float64
			Seconds float64
			Label   string `json:"case_label"`
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err, out)
	}
	if len(list.Recordings) != 1 || list.Recordings[0].ID != id || !list.Recordings[0].Synced ||
		len(list.Recordings[0].Marks) != 1 || list.Recordings[0].Label != "Family A" {
		t.Fatalf("list: %s", out)
	}
	mark := list.Recordings[0].Marks[0]

	mkv := filepath.Join(e.dir, "visit.mkv")
	if out, err := e.attune("export", id, "--out", mkv, "--marks", filepath.Join(e.dir, "marks.csv")); err != nil {
		t.Fatal(err, out)
	}
	p := testutil.FFProbe(t, mkv)
	frames := 0
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			frames = testutil.Int(s.NbReadFrames)
		}
	}
	dur := testutil.Float(p.Format.Duration)
	if frames < 105 || frames > 135 || math.Abs(dur-float64(frames)/30) > 0.1 {
		t.Errorf("export: %d frames, duration %.3fs", frames, dur)
	}
	if e := testutil.FFmpegErrors(t, mkv); e != "" {
		t.Errorf("export does not decode: %s", e)
	}
	ch, _ := exec.Command("ffprobe", "-v", "error", "-show_chapters", "-of", "json", mkv).Output()
	var chapters struct {
		Chapters []struct {
			StartTime string `json:"start_time"`
		}
	}
	json.Unmarshal(ch, &chapters)
	if len(chapters.Chapters) != 1 || math.Abs(testutil.Float(chapters.Chapters[0].StartTime)-mark) > 0.1 {
		t.Errorf("chapters %s, want one at %.3f", ch, mark)
	}
	if math.Abs(mark-2.0) > 0.5 {
		t.Errorf("mark at %.2fs, pressed at about 2s", mark)
	}
	e.d.Stop(t)
}

// cutProxy forwards to target and cuts every connection once limit bytes
// have come back from the device.
func cutProxy(t *testing.T, target string, limit int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// The limit counts the bytes of every connection (sync opens several):
	// past it the cable is out, for all of them and for any new one.
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				go func() { io.Copy(s, c); s.Close() }()
				buf := make([]byte, 16<<10)
				for {
					m, err := s.Read(buf)
					if n.Load() > limit {
						break
					}
					if m > 0 {
						c.Write(buf[:m])
						if n.Add(int64(m)) > limit {
							ln.Close()
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
				s.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSyncResume: the connection drops mid-sync; the next sync fetches
// only what is missing and the vault ends up complete and verified.
func TestSyncResume(t *testing.T) {
	e := newPaired(t)
	e.d.Record(t, 6*time.Second)
	id := e.deviceRecordings()[0]
	ix := readDeviceIndex(t, e.d.Data, id)
	total := ix.Bytes()

	proxy := cutProxy(t, e.d.Link, total/2)
	res, out, err := e.syncJSON("--device", proxy)
	if err == nil {
		t.Fatalf("sync through a cut connection succeeded:\n%s", out)
	}
	first := res.Bytes
	if first <= 0 || first >= total {
		t.Fatalf("first sync fetched %d of %d bytes before the cut", first, total)
	}
	res, out, err = e.syncJSON()
	if err != nil || len(res.Recordings) != 1 || !res.Recordings[0].Complete {
		t.Fatalf("resumed sync: %v %+v\n%s", err, res, out)
	}
	if res.Bytes+first > total+total/10 || res.Bytes >= total {
		t.Errorf("resumed sync fetched %d bytes after %d; the recording is %d: it fetched more than what was missing", res.Bytes, first, total)
	}
	t.Logf("cut after %d of %d bytes, resumed with %d", first, total, res.Bytes)
	vr := vaultDir(t, e.home, id)
	for n, seg := range ix.Segments {
		b, err := os.ReadFile(filepath.Join(vr, fmt.Sprintf("%06d.age", n)))
		if err != nil || int64(len(b)) != seg.Size {
			t.Errorf("vault segment %d: %v (%d bytes, want %d)", n, err, len(b), seg.Size)
		}
	}
	if got := e.deviceRecordings(); len(got) != 0 {
		t.Errorf("device still holds %v", got)
	}
}

// TestSyncTampered: a flipped byte in a segment on the device is reported,
// never acknowledged, and stays on the device; the rest syncs.
func TestSyncTampered(t *testing.T) {
	e := newPaired(t)
	e.d.Record(t, 3500*time.Millisecond)
	id := e.deviceRecordings()[0]
	seg1 := filepath.Join(e.d.Data, "recordings", id, "000001.age")
	b, err := os.ReadFile(seg1)
	if err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(b)
	b[len(b)/2] ^= 0x20
	os.WriteFile(seg1, b, 0o600)

	res, out, err := e.syncJSON()
	if err == nil {
		t.Fatalf("sync with a tampered segment reported success:\n%s", out)
	}
	if len(res.Recordings) != 1 || len(res.Recordings[0].Problems) != 1 || !strings.Contains(res.Recordings[0].Problems[0], "segment 1") {
		t.Fatalf("problems: %+v\n%s", res, out)
	}
	if got, _ := os.ReadFile(seg1); !bytes.Equal(got, b) {
		t.Error("tampered segment no longer on the device")
	}
	if _, err := os.Stat(filepath.Join(e.d.Data, "recordings", id, "000000.age")); !os.IsNotExist(err) {
		t.Error("good segment 0 was not acknowledged and deleted")
	}
	ix := readDeviceIndex(t, e.d.Data, id)
	if ix.Segments[1].Acked || !ix.Segments[0].Acked {
		t.Errorf("acks: %+v", ix.Segments)
	}
	// Put the right bytes back (the tamper was on the device): now it syncs.
	os.WriteFile(seg1, orig, 0o600)
	if res, out, err := e.syncJSON(); err != nil || !res.Recordings[0].Complete {
		t.Fatalf("sync after repair: %v %+v\n%s", err, res, out)
	}
}

// TestSyncDuringRecording: a recording in progress syncs its sealed
// segments and finishes at a later sync.
func TestSyncDuringRecording(t *testing.T) {
	e := newPaired(t)
	e.d.Press(t, 100, "rec")
	e.d.WaitState(t, "recording")
	time.Sleep(3500 * time.Millisecond)
	res, out, err := e.syncJSON()
	if err != nil || len(res.Recordings) != 1 || res.Recordings[0].Complete || res.Recordings[0].Held < 2 || res.Recordings[0].State != "recording" {
		t.Fatalf("sync during recording: %v %+v\n%s", err, res, out)
	}
	time.Sleep(1500 * time.Millisecond)
	e.d.Press(t, 100, "rec")
	e.d.WaitState(t, "ready")
	res, out, err = e.syncJSON()
	if err != nil || len(res.Recordings) != 1 || !res.Recordings[0].Complete || res.Recordings[0].Segments < 4 {
		t.Fatalf("sync after the recording: %v %+v\n%s", err, res, out)
	}
	if got := e.deviceRecordings(); len(got) != 0 {
		t.Errorf("device still holds %v", got)
	}
}

func readDeviceIndex(t *testing.T, data, id string) *storage.Index {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "recordings", id, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix storage.Index
	json.Unmarshal(b, &ix)
	return &ix
}

func vaultDir(t *testing.T, home, id string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(home, "vault", "*", id))
	if len(m) != 1 {
		t.Fatalf("vault dir of %s: %v", id, m)
	}
	return m[0]
}
