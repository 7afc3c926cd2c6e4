package laptop

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/custody/custodytest"
	"attune.dev/attune/link"
)

// chainTestDevice is a device's audit log, kept in memory. Its clock is
// deterministic: each reading is one second after the previous one.
type chainTestDevice struct {
	t *testing.T
	a *custodytest.Log
}

func newChainTestDevice(t *testing.T, trusted bool) *chainTestDevice {
	t.Helper()
	clock := &custodytest.Clock{Step: time.Second, Wall: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Trusted: trusted}
	return &chainTestDevice{t, custodytest.NewLog(clock.Now)}
}

func (d *chainTestDevice) add(rs ...custody.Record) {
	d.t.Helper()
	for _, r := range rs {
		if _, err := d.a.Append(r); err != nil {
			d.t.Fatal(err)
		}
	}
}

func (d *chainTestDevice) boots(n int) *chainTestDevice {
	for range n {
		d.add(custody.Record{Event: custody.EventBoot})
	}
	return d
}

func (d *chainTestDevice) raw(after uint64) []byte {
	d.t.Helper()
	_, raw, err := d.a.Records(after)
	if err != nil {
		d.t.Fatal(err)
	}
	return raw
}

func wantChainBreak(t *testing.T, err error, seq uint64) {
	t.Helper()
	var ce *custody.ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a chain break at seq %d", err, seq)
	}
	if ce.Seq != seq {
		t.Fatalf("chain break at seq %d (%v), want seq %d", ce.Seq, err, seq)
	}
}

func TestAppendChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cases", "0011223344556677")
	path := filepath.Join(dir, ChainFile)
	dev := newChainTestDevice(t, true).boots(10)
	if err := AppendChain(dir, dev.raw(0)); err != nil {
		t.Fatal(err)
	}
	kept, _ := os.ReadFile(path)
	if !bytes.Equal(kept, dev.raw(0)) {
		t.Fatal("kept copy differs from the device's chain")
	}
	// The next sync pulls what follows.
	dev.add(custody.Record{Event: custody.EventClockSet}, custody.Record{Event: custody.EventRecordingStarted, Recording: "0123456789abcdef"})
	if err := AppendChain(dir, dev.raw(10)); err != nil {
		t.Fatal(err)
	}
	// Pulling all of it again, an overlapping part, or nothing is harmless.
	for _, after := range []uint64{0, 5, 11, 12} {
		if err := AppendChain(dir, dev.raw(after)); err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
	}
	kept, _ = os.ReadFile(path)
	if !bytes.Equal(kept, dev.raw(0)) {
		t.Fatal("kept copy differs from the device's chain")
	}
	recs, err := LoadChain(dir)
	if err != nil || len(recs) != 12 || recs[11].Recording != "0123456789abcdef" {
		t.Fatalf("LoadChain: %d records, %v", len(recs), err)
	}
	if recs, err := LoadChain(t.TempDir()); err != nil || recs != nil {
		t.Fatalf("LoadChain without a copy: %v %v", recs, err)
	}
}

func TestAppendChainRefusesRewrittenHistory(t *testing.T) {
	// Two devices with the same clock and the same first 6 records write
	// the same lines; from seq 7 on the second one's history differs.
	orig := newChainTestDevice(t, true).boots(10)
	rewritten := newChainTestDevice(t, true).boots(6)
	rewritten.add(custody.Record{Event: custody.EventClockSet})
	rewritten.boots(5)
	if !bytes.Equal(orig.raw(0)[:len(rewritten.raw(0))-len(rewritten.raw(6))], rewritten.raw(0)[:len(rewritten.raw(0))-len(rewritten.raw(6))]) {
		t.Fatal("test devices do not share their first records")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, ChainFile)
	if err := AppendChain(dir, orig.raw(0)); err != nil {
		t.Fatal(err)
	}
	kept, _ := os.ReadFile(path)

	wantChainBreak(t, AppendChain(dir, rewritten.raw(0)), 7)   // the whole chain: the changed record
	wantChainBreak(t, AppendChain(dir, rewritten.raw(10)), 11) // only the new part: it does not chain on
	wantChainBreak(t, AppendChain(dir, rewritten.raw(3)), 7)

	// Records removed at the end.
	short := orig.raw(0)
	short = short[:len(short)-len(orig.raw(8))]
	wantChainBreak(t, AppendChain(dir, short), 9)

	// A record altered in transit or on the device.
	tampered := bytes.Replace(orig.raw(0), []byte(`"seq":4,"event":"boot"`), []byte(`"seq":4,"event":"bool"`), 1)
	wantChainBreak(t, AppendChain(dir, tampered), 4)
	wantChainBreak(t, AppendChain(dir, []byte("garbage\n")), 11)

	// A gap: records the laptop never saw.
	orig.boots(5)
	if err := AppendChain(dir, orig.raw(12)); err == nil || !strings.Contains(err.Error(), "seq 13") {
		t.Fatalf("gap: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, kept) {
		t.Fatal("a refused chain changed the kept copy")
	}

	// A damaged kept copy is reported, not extended.
	if err := os.WriteFile(path, bytes.Replace(kept, []byte(`"seq":2,`), []byte(`"seq":9,`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	wantChainBreak(t, AppendChain(dir, orig.raw(10)), 2)
	if _, err := LoadChain(dir); err == nil {
		t.Fatal("LoadChain accepted a damaged copy")
	}
}

const (
	recA    = "00000000000000aa" // synced and deleted
	recB    = "00000000000000bb" // partly synced, erased at the reset
	recC    = "00000000000000cc" // interrupted, never synced, erased
	caseRef = "0011223344556677"
)

// reportTestCase plays a case on a device: pairing, three recordings,
// syncs, a factory reset with its certificate.
func reportTestCase(t *testing.T, trusted bool) ([]custody.Record, []KeptCertificate, ed25519.PrivateKey) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	tlsCert, err := link.SelfSignedCert(key, "attune-test")
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := link.CertPin(tlsCert)
	dev := newChainTestDevice(t, trusted)
	h := strings.Repeat
	dev.add(
		custody.Record{Event: custody.EventBoot},
		custody.Record{Event: custody.EventPairingFailed, Detail: "wrong_code"},
		custody.Record{Event: custody.EventPaired, CaseRef: caseRef, SHA256: h("1a", 32)},
		custody.Record{Event: custody.EventClockSet},
		custody.Record{Event: custody.EventRecordingStarted, Recording: recA, CaseRef: caseRef},
		custody.Record{Event: custody.EventRecordingStopped, Recording: recA, Detail: "stopped"},
		custody.Record{Event: custody.EventRecordingSealed, Recording: recA, Count: 3, Bytes: 3_500_000, SHA256: h("2b", 32)},
		custody.Record{Event: custody.EventRecordingStarted, Recording: recB, CaseRef: caseRef},
		custody.Record{Event: custody.EventRecordingStopped, Recording: recB, Detail: "max-duration"},
		custody.Record{Event: custody.EventRecordingSealed, Recording: recB, Count: 2, Bytes: 2_000_000, SHA256: h("3c", 32)},
		custody.Record{Event: custody.EventRecordingStarted, Recording: recC, CaseRef: caseRef},
		custody.Record{Event: custody.EventBoot},
		custody.Record{Event: custody.EventRecordingInterrupted, Recording: recC, Count: 1, Bytes: 900_000, SHA256: h("4d", 32)},
		custody.Record{Event: custody.EventSegmentTransferred, Recording: recA, Segments: []int{0, 1, 2}, Bytes: 3_500_000},
		custody.Record{Event: custody.EventAcknowledged, Recording: recA, Segments: []int{0, 1, 2}, Detail: "manifest"},
		custody.Record{Event: custody.EventDeleted, Recording: recA, Count: 3},
		custody.Record{Event: custody.EventSegmentTransferred, Recording: recB, Segments: []int{0}, Bytes: 1_000_000},
		custody.Record{Event: custody.EventAcknowledged, Recording: recB, Segments: []int{0}},
	)
	seq, head := dev.a.Head()
	cert := custody.Certificate{
		Device: "0a1b2c3d4e5f6071", Issued: time.Date(2026, 4, 1, 9, 30, 0, 0, time.UTC), WallTrusted: trusted,
		AuditSeq: seq, AuditHead: head,
		Recordings: []custody.ErasedRecording{
			{ID: recB, State: "complete", CaseRef: caseRef, Manifest: h("5e", 32), Segments: []custody.ErasedSegment{
				{SHA256: h("6f", 32), Size: 1_000_000, Synced: true}, {SHA256: h("70", 32), Size: 1_000_000},
			}},
			{ID: recC, State: "interrupted", CaseRef: caseRef, Segments: []custody.ErasedSegment{{SHA256: h("81", 32), Size: 900_000}}},
		},
	}
	signed, err := custody.SignCertificate(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	dev.add(custody.Record{Event: custody.EventReset, Count: 2, SHA256: custody.CertificateDigest(signed)})
	recs, _, err := dev.a.Records(0)
	if err != nil {
		t.Fatal(err)
	}
	return recs, []KeptCertificate{{Signed: signed, Pin: pin}}, key
}

func report(t *testing.T, recs []custody.Record, certs []KeptCertificate, label, format string) string {
	t.Helper()
	var b strings.Builder
	if err := Report(&b, recs, certs, label, format); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReportText(t *testing.T) {
	recs, certs, _ := reportTestCase(t, true)
	out := report(t, recs, certs, "Family A, spring 2026", "text")
	for _, want := range []string{
		"Family A, spring 2026",
		"19 records, seq 1 to 19: hash chain intact, complete from the device's first record",
		"Recording " + recA, "Recording " + recB, "Recording " + recC,
		"on this laptop; deleted from the device",
		"erased at the reset before it was fully synced: parts are lost",
		"2026-03-02 10:00:05 UTC", // recA started
		"3 segments, 3.5 MB encrypted",
		"unknown (interrupted)",
		"3 segments and the manifest, verified by decryption",
		"signature valid: signed by the paired device",
		"matches the audit chain",
		"the device recorded the reset with this certificate",
		"2 recordings still on the device were erased; 2 of them had not been fully synced",
		"2 segments left on the device, 1 synced before, 1 never synced",
		"pairing attempt failed (wrong_code)",
		"factory reset: 2 recordings erased",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// recA started at +5 s and stopped at +6 s.
	if !strings.Contains(out, "\n  Length        1 s\n") {
		t.Errorf("recording length missing")
	}
	for _, bad := range []string{"NOT VALID", "BROKEN", "DOES NOT MATCH"} {
		if strings.Contains(out, bad) {
			t.Errorf("report says %q", bad)
		}
	}
	// Aligned: the values of a recording's block start in one column.
	col := -1
	for _, l := range strings.Split(out, "\n") {
		for _, k := range []string{"  Status ", "  Recorded ", "  Acknowledged ", "  Erased "} {
			if strings.HasPrefix(l, k) {
				c := len(l) - len(strings.TrimLeft(l[len(k):], " "))
				if col >= 0 && c != col {
					t.Fatalf("values not aligned (%d, %d):\n%s", col, c, out)
				}
				col = c
			}
		}
	}
	if col < 0 {
		t.Fatalf("no recording block:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("\n%s", out)
	}
}

func TestReportNoPersonalDataBeyondLabel(t *testing.T) {
	recs, certs, _ := reportTestCase(t, true)
	for _, format := range []string{"text", "html"} {
		a := report(t, recs, certs, "Smithson household", format)
		b := report(t, recs, certs, "Jones household", format)
		if !strings.Contains(a, "Smithson household") || strings.ReplaceAll(a, "Smithson household", "Jones household") != b {
			t.Fatalf("%s: the label is not the only thing the caller's text adds", format)
		}
		if strings.Contains(report(t, recs, certs, "", format), "household") {
			t.Fatalf("%s: personal data from elsewhere", format)
		}
	}
}

func TestReportHTML(t *testing.T) {
	recs, certs, _ := reportTestCase(t, false)
	out := report(t, recs, certs, `<script>alert("x")</script> & Co`, "html")
	if strings.Contains(strings.ToLower(out), "<script") {
		t.Fatal("label not escaped, or the page has a script")
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co",
		"<!DOCTYPE html>", "<style>", "@media print",
		recA, recB, recC, "erased", "clock not set",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"http://", "https://", " src=", "<link", "onload", "javascript:"} {
		if strings.Contains(out, bad) {
			t.Errorf("HTML is not self-contained: has %q", bad)
		}
	}
}

func TestReportDetectsBadCertificatesAndChains(t *testing.T) {
	recs, certs, _ := reportTestCase(t, true)
	tampered := append([]byte(nil), certs[0].Signed...)
	i := bytes.Index(tampered, []byte(`"synced": true`))
	copy(tampered[i:], `"synced": fals`) // wrong on purpose: any change must fail
	for name, c := range map[string]KeptCertificate{
		"tampered":  {Signed: tampered, Pin: certs[0].Pin},
		"wrong pin": {Signed: certs[0].Signed, Pin: strings.Repeat("0", 64)},
		"no pin":    {Signed: certs[0].Signed},
	} {
		out := report(t, recs, []KeptCertificate{c}, "case", "text")
		if !strings.Contains(out, "NOT VALID") && !strings.Contains(out, "NOT VERIFIED") {
			t.Errorf("%s: certificate accepted:\n%s", name, out)
		}
		if strings.Contains(out, "left on the device") {
			t.Errorf("%s: an unverified certificate's contents were reported", name)
		}
	}

	bad := append([]custody.Record(nil), recs...)
	bad[6].Bytes++
	out := report(t, bad, certs, "case", "text")
	if !strings.Contains(out, "BROKEN") || !strings.Contains(out, "seq 7") {
		t.Fatalf("altered record not reported:\n%s", out)
	}
	// A certificate that names a head the chain does not have.
	out = report(t, recs[:10], certs, "case", "text")
	if !strings.Contains(out, "not among the records held") || !strings.Contains(out, "no reset record") {
		t.Fatalf("certificate not checked against the chain:\n%s", out)
	}
	if err := Report(&strings.Builder{}, recs, certs, "case", "pdf"); err == nil {
		t.Fatal("unknown format accepted")
	}
	if out := report(t, nil, nil, "case", "text"); !strings.Contains(out, "no audit records") {
		t.Fatalf("empty report:\n%s", out)
	}
}

func TestReportSealedWithoutStop(t *testing.T) {
	dev := newChainTestDevice(t, true)
	dev.add(
		custody.Record{Event: custody.EventRecordingStarted, Recording: recA},
		custody.Record{Event: custody.EventRecordingSealed, Recording: recA, Count: 4, Bytes: 4000, Detail: "disk-full"},
	)
	recs, _, err := dev.a.Records(0)
	if err != nil {
		t.Fatal(err)
	}
	out := report(t, recs, nil, "case", "text")
	for _, want := range []string{"Ended         2026-03-02 10:00:02 UTC (disk-full)", "Length        1 s", "4 segments, 4.0 kB encrypted", "on the device, not yet synced"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestReportPartialStates: a recording with some segments acknowledged is
// reported as partly synced — also when the chain holds a deleted record
// per acknowledgement, as older devices wrote — and only a recording whose
// every segment was acknowledged as deleted from the device.
func TestReportPartialStates(t *testing.T) {
	const part, whole = "00000000000000d1", "00000000000000d2"
	dev := newChainTestDevice(t, true)
	h := strings.Repeat
	dev.add(
		custody.Record{Event: custody.EventRecordingStarted, Recording: part, CaseRef: caseRef},
		custody.Record{Event: custody.EventRecordingSealed, Recording: part, Count: 3, Bytes: 3_000_000, SHA256: h("2b", 32)},
		custody.Record{Event: custody.EventSegmentTransferred, Recording: part, Segments: []int{0}},
		custody.Record{Event: custody.EventAcknowledged, Recording: part, Segments: []int{0}},
		custody.Record{Event: custody.EventDeleted, Recording: part, Segments: []int{0}, Count: 1},
		custody.Record{Event: custody.EventRecordingStarted, Recording: whole, CaseRef: caseRef},
		custody.Record{Event: custody.EventRecordingSealed, Recording: whole, Count: 2, Bytes: 2_000_000, SHA256: h("3c", 32)},
		custody.Record{Event: custody.EventAcknowledged, Recording: whole, Segments: []int{0, 1}, Detail: "with_manifest"},
		custody.Record{Event: custody.EventDeleted, Recording: whole, Count: 2},
	)
	recs, _, err := dev.a.Records(0)
	if err != nil {
		t.Fatal(err)
	}
	out := report(t, recs, nil, "partial", "text")
	blocks := strings.Split(out, "Recording ")
	var partBlock, wholeBlock string
	for _, b := range blocks {
		switch {
		case strings.HasPrefix(b, part):
			partBlock = b
		case strings.HasPrefix(b, whole):
			wholeBlock = b
		}
	}
	if !strings.Contains(partBlock, "partly synced: 1 of 3 segments acknowledged and deleted from the device; the other 2 are still on it") {
		t.Errorf("partly synced recording:\n%s", partBlock)
	}
	if strings.Contains(partBlock, "on this laptop; deleted from the device") || strings.Contains(partBlock, "last files removed") {
		t.Errorf("partly synced recording reported deleted:\n%s", partBlock)
	}
	if !strings.Contains(wholeBlock, "on this laptop; deleted from the device") || !strings.Contains(wholeBlock, "2 segments and the manifest") {
		t.Errorf("fully synced recording:\n%s", wholeBlock)
	}
}

// After a factory reset the device keeps only its reset record. A laptop
// paired afterwards receives just that record and verifies it against the
// erasure certificate (the record chains onto the head the certificate
// signed, and names its digest); a laptop that held the chain up to the
// reset extends its copy as ever; one that missed records before the reset
// is told why it cannot have them.
func TestAppendChainAfterReset(t *testing.T) {
	recs, certs, _ := reportTestCase(t, true)
	raw, ok := reportRecLines(recs)
	if !ok {
		t.Fatal("encode")
	}
	lines := chainLines(raw)
	resetLine := append(append([]byte(nil), lines[len(lines)-1]...), '\n')
	before := raw[:len(raw)-len(resetLine)]

	// A new laptop: only the reset record, anchored on the certificate.
	dir := t.TempDir()
	if err := AppendChain(dir, resetLine); err != nil {
		t.Fatalf("new laptop, compacted chain: %v", err)
	}
	kept, err := LoadChain(dir)
	if err != nil || len(kept) != 1 || kept[0].Event != custody.EventReset {
		t.Fatalf("kept after the reset: %v %v", kept, err)
	}
	if err := AppendChain(dir, resetLine); err != nil {
		t.Fatalf("the same chain again: %v", err)
	}
	out := report(t, kept, certs, "Family B", "text")
	for _, want := range []string{
		"1 record, seq 19 to 19: hash chain intact, from a factory reset",
		"seq 18: the reset record (seq 19) chains onto it",
		"seq 19, 2026-03-02 10:00:19 UTC: the device recorded the reset with this certificate",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Recording "+recA) {
		t.Errorf("the new laptop's report shows an earlier case's recording:\n%s", out)
	}

	// A reset record that names the certificate but does not follow the
	// head it signed: not verified.
	other := newChainTestDevice(t, true).boots(18)
	other.add(custody.Record{Event: custody.EventReset, Count: 2, SHA256: custody.CertificateDigest(certs[0].Signed)})
	forged := chainLines(other.raw(18))
	dir2 := t.TempDir()
	if err := AppendChain(dir2, append(forged[0], '\n')); err != nil {
		t.Fatal(err)
	}
	fk, _ := LoadChain(dir2)
	out = report(t, fk, certs, "Family B", "text")
	if !strings.Contains(out, "not among the records held") || !strings.Contains(out, "DOES NOT FOLLOW the audit head it signed") {
		t.Errorf("a reset record off the certificate's head passed:\n%s", out)
	}

	// The laptop that held the chain up to the reset.
	old := t.TempDir()
	if err := AppendChain(old, before); err != nil {
		t.Fatal(err)
	}
	if err := AppendChain(old, resetLine); err != nil {
		t.Fatalf("old laptop, compacted chain: %v", err)
	}
	if kept, err := LoadChain(old); err != nil || len(kept) != len(recs) {
		t.Fatalf("old laptop's copy: %d records, %v", len(kept), err)
	}
	// One that stopped pulling earlier cannot have the records between.
	gap := t.TempDir()
	if err := AppendChain(gap, bytes.Join(lines[:10], []byte("\n"))); err == nil {
		t.Fatal("setup: a copy without its last newline was accepted")
	}
	var partial []byte
	for _, l := range lines[:10] {
		partial = append(append(partial, l...), '\n')
	}
	if err := AppendChain(gap, partial); err != nil {
		t.Fatal(err)
	}
	err = AppendChain(gap, resetLine)
	wantChainBreak(t, err, 11)
	if !strings.Contains(err.Error(), "keeps only its reset record") {
		t.Fatalf("gap before the reset: %v", err)
	}
}
