package laptop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"filippo.io/age"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
)

// vaultRecording records d of the pattern and tone with the device's
// pipeline into the device's store and puts it in h's vault as sync would.
func vaultRecording(t *testing.T, h *Home, c *Case, rcpt age.Recipient, d time.Duration) VaultRecording {
	t.Helper()
	data := t.TempDir()
	s, err := storage.Open(data, storage.Options{Free: func(string) (uint64, error) { return 1 << 40, nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := storage.NewRecipients([]age.Recipient{rcpt})
	if err != nil {
		t.Fatal(err)
	}
	rs.CaseRef = c.ID
	rec, err := s.Create(rs, storage.Manifest{Source: "testsrc"})
	if err != nil {
		t.Fatal(err)
	}
	srcs := []capture.Source{capture.NewPatternSource(capture.Fast), capture.NewToneSource(capture.Fast)}
	st, err := capture.Record(context.Background(), srcs, rec, capture.RecordOptions{MaxDuration: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(func(m *storage.Manifest) { m.Duration = st.Duration.Seconds(); m.EndReason = st.Ended }); err != nil {
		t.Fatal(err)
	}
	ix, err := s.Index(rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	dir := h.recordingDir(c.ID, ix.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, fi := range append([]storage.FileInfo{*ix.Manifest}, ix.Segments...) {
		b, err := os.ReadFile(filepath.Join(data, storage.RecordingsDir, ix.ID, fi.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fi.Name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeJSON(filepath.Join(dir, storage.IndexName), ix); err != nil {
		t.Fatal(err)
	}
	vr, err := h.FindRecording(ix.ID)
	if err != nil {
		t.Fatal(err)
	}
	return vr
}

// TestSealedStreamPlays: with the seals at the end of every segment, the
// segments decrypted in name order and concatenated (the stock-tools
// recovery) are still a stream ffprobe reads without a single error.
func TestSealedStreamPlays(t *testing.T) {
	need(t, "ffprobe")
	h, c, rcpt := newSyncCase(t)
	id, err := h.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	vr := vaultRecording(t, h, c, rcpt, 4*time.Second)
	if n := len(vr.Index.Segments); n < 4 {
		t.Fatalf("%d segments", n)
	}
	out := filepath.Join(t.TempDir(), "recording.mkv")
	var all []byte
	for n := range vr.Index.Segments {
		all = append(all, decryptAll(t, filepath.Join(vr.Dir, storage.SegmentName(n)), id)...)
	}
	if err := os.WriteFile(out, all, 0o600); err != nil {
		t.Fatal(err)
	}
	p := ffprobe(t, out) // fails on anything ffprobe prints at -v error
	if len(p.Streams) != 2 || p.Streams[0].NbReadFrames == "" || seconds(t, p.Streams[0].NbReadFrames) < 100 {
		t.Errorf("probe: %+v", p)
	}
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-")
	if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
		t.Errorf("ffmpeg decode: %v\n%s", err, b)
	}
}

func decryptAll(t *testing.T, path string, id age.Identity) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, r); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// TestExportGaps: a recording with segment 2 missing from the vault is
// refused; with allowGaps it exports the rest and names the missing
// seconds (segment 2 is 1.25–2.25 s: the first segment seals after 250 ms).
// A segment of another recording put in its place is refused
// outright.
func TestExportGaps(t *testing.T) {
	need(t, "ffprobe")
	h, c, rcpt := newSyncCase(t)
	id, err := h.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	vr := vaultRecording(t, h, c, rcpt, 5*time.Second)
	other := vaultRecording(t, h, c, rcpt, 5*time.Second)
	seg2 := filepath.Join(vr.Dir, storage.SegmentName(2))
	b2, _ := os.ReadFile(seg2)
	if err := os.Remove(seg2); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "film.mkv")
	info, _, err := h.ExportRecording(context.Background(), vr, id, out, false)
	if !errors.Is(err, ErrGaps) || !strings.Contains(err.Error(), "segment 2 missing (about 0:01 to 0:02)") || !strings.Contains(err.Error(), "--allow-gaps") {
		t.Fatalf("export with a gap: %v", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Error("a refused export wrote its file")
	}
	info, _, err = h.ExportRecording(context.Background(), vr, id, out, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Gaps) != 1 || info.Gaps[0].First != 2 || info.Gaps[0].Last != 2 ||
		info.Gaps[0].From.Round(time.Second) != time.Second || info.Gaps[0].To.Round(time.Second) != 2*time.Second {
		t.Errorf("gaps: %+v", info.Gaps)
	}
	ffprobe(t, out)

	// Segment 2 of the other recording in its place: not this recording's.
	if err := os.Rename(filepath.Join(other.Dir, storage.SegmentName(2)), seg2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ExportRecording(context.Background(), vr, id, out, true); err == nil || !strings.Contains(err.Error(), "segment 2 in the vault: its seal does not match this recording") {
		t.Errorf("export with a spliced segment: %v", err)
	}
	// Its own segment 2 back: whole, no gaps.
	if err := os.WriteFile(seg2, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	if info, _, err := h.ExportRecording(context.Background(), vr, id, out, false); err != nil || len(info.Gaps) != 0 {
		t.Errorf("whole recording: %v, gaps %v", err, info.Gaps)
	}
}

// TestStreamAheadAndClose: the stream, decrypted ahead by workers, is the
// segments' plaintexts in order without their seals; closing it part-way
// stops the workers.
func TestStreamAheadAndClose(t *testing.T) {
	h, c, rcpt := newSyncCase(t)
	id, err := h.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	vr := vaultRecording(t, h, c, rcpt, 8*time.Second)
	if n := len(vr.Index.Segments); n <= streamAhead+streamWorkers {
		t.Fatalf("%d segments: too few to fill the workers", n)
	}
	var want []byte
	for n := range vr.Index.Segments {
		p := decryptAll(t, filepath.Join(vr.Dir, storage.SegmentName(n)), id)
		want = append(want, p[:len(p)-storage.SealSize]...)
	}
	s, err := vr.Stream(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(s, 100))) // tiny reads first
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(s)
	s.Close()
	if err != nil || !bytes.Equal(append(got, rest...), want) {
		t.Fatalf("stream: %d bytes (%v), want the %d bytes of the plaintexts", len(got)+len(rest), err, len(want))
	}
	// Closed after a few bytes, a stream stops its workers: Close waits
	// for them, and they decrypted no more than they may run ahead.
	for range 3 {
		s, err := vr.Stream(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := s.Read(make([]byte, 10)); err == nil {
			t.Error("a closed stream read on")
		}
		n := s.loaded.Load()
		if limit := int32(1 + streamAhead + streamWorkers); n > limit || int(n) >= len(vr.Index.Segments) {
			t.Errorf("closed after 10 bytes: %d of %d segments decrypted, at most %d expected", n, len(vr.Index.Segments), limit)
		}
		unopened, _ := vr.Stream(id)
		unopened.Close()
		if unopened.loaded.Load() != 0 {
			t.Error("a stream never read decrypted something")
		}
	}
}

// TestStreamDamagedSegment: a segment in the vault that is cut short, or
// has a byte changed, stops the stream with an error naming it, after the
// whole plaintexts of the segments before it and nothing of its own.
func TestStreamDamagedSegment(t *testing.T) {
	h, c, rcpt := newSyncCase(t)
	id, err := h.Identity(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	vr := vaultRecording(t, h, c, rcpt, 5*time.Second)
	var before []byte // the plaintexts of segments 0 and 1
	for n := range 2 {
		p := decryptAll(t, filepath.Join(vr.Dir, storage.SegmentName(n)), id)
		before = append(before, p[:len(p)-storage.SealSize]...)
	}
	seg2 := filepath.Join(vr.Dir, storage.SegmentName(2))
	orig, err := os.ReadFile(seg2)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(orig)
	flipped[len(flipped)/2] ^= 0x01
	for name, b := range map[string][]byte{
		"cut short":         orig[:len(orig)-100],
		"a byte flipped":    flipped,
		"cut to its header": orig[:100],
	} {
		if err := os.WriteFile(seg2, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := vr.Stream(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		s.Close()
		t.Logf("%s: %v", name, err)
		if err == nil || !strings.Contains(err.Error(), storage.SegmentName(2)) {
			t.Errorf("%s: stream error %v, want one naming %s", name, err, storage.SegmentName(2))
		}
		if !bytes.Equal(got, before) {
			t.Errorf("%s: %d bytes read before the error, want the %d of segments 0 and 1", name, len(got), len(before))
		}
	}
}
