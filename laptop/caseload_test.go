package laptop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// Duplicate labels were accepted, and then every command that names the
// case by label failed.
func TestNewCaseRefusesDuplicateLabel(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.NewCase("Family A", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.NewCase(" family a ", true, ""); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("a second Family A: %v", err)
	}
	for _, ref := range []string{"Family A", "FAMILY A", a.Number(), a.ID[:5]} {
		if c, err := h.FindCase(ref); err != nil || c.ID != a.ID {
			t.Errorf("FindCase(%q): %v", ref, err)
		}
	}
}

// Consent: future dates refused; a withdrawal is recorded with its date,
// is enforced on export, and an amendment after it is in force.
func TestConsentWithdrawEnforced(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.NewCase("Family B", true, "")
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	if err := h.GiveConsent(c, Consent{Who: "mum", Date: "2026-05-11", SharedReview: true}, now); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("consent dated tomorrow: %v", err)
	}
	if err := h.GiveConsent(c, Consent{Who: "mum", Date: "2026-05-10", Filming: true, SharedReview: true, ClipsToFamily: true}, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Permits(ScopeFamilyCopy); err != nil {
		t.Fatal(err)
	}
	if err := c.Permits(ScopeTraining); err == nil {
		t.Error("training permitted without consent to it")
	}
	if err := h.WithdrawConsent(c, ScopeFamilyCopy, "mum", "2026-06-01", now); err == nil {
		t.Error("a withdrawal dated in the future was taken")
	}
	later := now.Add(24 * time.Hour)
	if err := h.WithdrawConsent(c, ScopeFamilyCopy, "mum", "2026-05-11", later); err != nil {
		t.Fatal(err)
	}
	c, _ = h.Case(c.ID)
	if err := c.Permits(ScopeFamilyCopy); err == nil || !strings.Contains(err.Error(), "withdrawn on 2026-05-11") {
		t.Errorf("family copy after the withdrawal: %v", err)
	}
	if err := c.Permits(ScopeSharedReview); err != nil {
		t.Errorf("shared review after withdrawing family copy only: %v", err)
	}
	_, _, _, err = h.ExportFor(t.Context(), c, VaultRecording{ID: "0123456789abcdef", Case: c.ID}, nil, filepath.Join(t.TempDir(), "x.mkv"), ScopeFamilyCopy, later, false)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("export for a withdrawn scope: %v", err)
	}
	recs, err := h.LaptopChain(c)
	if err != nil || len(recs) != 2 || recs[0].Event != custody.EventConsentGiven || recs[1].Event != custody.EventConsentWithdrawn || recs[1].Detail != ScopeFamilyCopy {
		t.Fatalf("laptop chain: %v %+v", err, recs)
	}
	// An amendment after the withdrawal is in force.
	if err := h.GiveConsent(c, Consent{Who: "mum", Date: "2026-05-11", SharedReview: true, ClipsToFamily: true}, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := c.Permits(ScopeFamilyCopy); err != nil {
		t.Errorf("family copy after the amendment: %v", err)
	}
}

// Erasing the open case a device records to left the device sealing new
// recordings to a destroyed key.
func TestEraseRefusesCaseOnDevice(t *testing.T) {
	h, c, _, _ := pairedHome(t)
	if _, err := h.Erase(c, time.Now()); err == nil || !strings.Contains(err.Error(), "close the case first") {
		t.Fatalf("erase of the case a device records to: %v", err)
	}
	if _, err := h.Identity(c, nil); err != nil {
		t.Fatalf("the refused erase destroyed the key: %v", err)
	}
}

// Closing a case on a device other open cases use tells the device (no
// reset); the device is not recording to the case any more, so it can be
// erased, and the erasure is in the case's laptop chain.
func TestCloseSharedDeviceClears(t *testing.T) {
	h, c, dev, key := pairedHome(t)
	c.Device = dev.ID
	h.SaveCase(c)
	b, err := h.NewCase("Family B", true, "")
	if err != nil {
		t.Fatal(err)
	}
	b.Device = dev.ID
	h.SaveCase(b)
	fake := &fakeResetDevice{key: key, unsynced: []*storage.Index{{ID: "3f9c0a7d52e1b864", CaseRef: c.ID, State: storage.Complete,
		Segments: []storage.FileInfo{{Name: storage.SegmentName(0), Size: 10, SHA256: strings.Repeat("ab", 32)}}}}}
	connect := func(*Device) (ResetAPI, error) { return fake, nil }
	if _, err := h.CloseCase(t.Context(), c, connect, CloseOptions{RetentionDays: 30}); err == nil || !strings.Contains(err.Error(), "never synced") {
		t.Fatalf("close with unsynced footage of the case: %v", err)
	}
	fake.unsynced[0].CaseRef = b.ID // footage of another case does not hold the close up
	res, err := h.CloseCase(t.Context(), c, connect, CloseOptions{RetentionDays: 30})
	if err != nil || !res.Cleared || fake.cleared != 1 || fake.resets != 0 {
		t.Fatalf("close: %v %+v; %d clears, %d resets", err, res, fake.cleared, fake.resets)
	}
	devs, _ := h.Devices()
	if len(devs) != 1 || devs[0].Case != "" {
		t.Fatalf("device after close: %+v", devs)
	}
	if _, err := h.Erase(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	recs, _ := h.LaptopChain(c)
	if n := len(recs); n < 2 || recs[n-2].Event != custody.EventCaseClosed || recs[n-1].Event != custody.EventCaseErased || recs[n-1].Detail != "practitioner" {
		t.Fatalf("laptop chain: %+v", recs)
	}
}

// A certificate of a reset done later on the device's buttons verified
// only while the laptop still knew the device: the pin is now kept with
// the case.
func TestCertificateVerifiedAgainstCasePins(t *testing.T) {
	h, c, dev, key := pairedHome(t)
	dev2 := *dev
	if err := h.linkCase(c, &dev2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveDevice(dev.ID); err != nil { // the laptop forgot the device
		t.Fatal(err)
	}
	cert := custody.Certificate{Device: dev.ID, Issued: time.Now().UTC(), AuditHead: custody.ZeroHash}
	signed, err := custody.SignCertificate(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveCertificate(c, signed, ""); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := h.CaseReport(c, "text", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "signature valid") || strings.Contains(out.String(), "NOT VERIFIED") {
		t.Errorf("certificate not verified against the case's pins:\n%s", out.String())
	}
}

// The audit of one case listed the recordings and pairings of every case
// the device ever recorded to.
func TestCaseReportShowsOnlyItsCase(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := h.NewCase("Family A", true, "")
	d, _ := h.NewCase("Family D", true, "")
	dev := newChainTestDevice(t, true)
	const recA, recD = "aaaaaaaaaaaaaaaa", "dddddddddddddddd"
	dev.boots(1)
	dev.add(
		custody.Record{Event: custody.EventPaired, CaseRef: a.ID},
		custody.Record{Event: custody.EventRecordingStarted, Recording: recA, CaseRef: a.ID},
		custody.Record{Event: custody.EventRecordingSealed, Recording: recA, Count: 1, Bytes: 10, SHA256: strings.Repeat("1a", 32)},
		custody.Record{Event: custody.EventPaired, CaseRef: d.ID, Detail: "new_case"},
		custody.Record{Event: custody.EventRecordingStarted, Recording: recD, CaseRef: d.ID},
		custody.Record{Event: custody.EventRecordingSealed, Recording: recD, Count: 1, Bytes: 10, SHA256: strings.Repeat("1d", 32)},
	)
	api := chainAPI{raw: dev.raw(0)}
	dv := &Device{ID: "0a1b2c3d4e5f6071", Pin: strings.Repeat("ef", 32), Case: d.ID}
	a.Device, d.Device = dv.ID, dv.ID
	h.SaveCase(a)
	h.SaveCase(d)
	if _, err := h.PullCustody(t.Context(), api, dv); err != nil {
		t.Fatal(err)
	}
	d, _ = h.Case(d.ID)
	var out strings.Builder
	if err := h.CaseReport(d, "text", &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.Contains(s, "Recording "+recD) || strings.Contains(s, recA) || strings.Contains(s, a.ID) || strings.Contains(s, "Family A") {
		t.Errorf("Family D's audit:\n%s", s)
	}
	if strings.Contains(s, d.ID) || !strings.Contains(s, "Family D") {
		t.Errorf("Family D's audit shows the case id, not its label:\n%s", s)
	}
	if !strings.Contains(s, "the device's audit chain pulled up to seq 7") {
		t.Errorf("the laptop chain does not link to the device's:\n%s", s)
	}
}

type chainAPI struct{ raw []byte }

func (c chainAPI) Audit(context.Context, uint64) ([]byte, error)  { return c.raw, nil }
func (c chainAPI) Certificates(context.Context) ([][]byte, error) { return nil, nil }

// A supervision case exports for supervision only, marked as such.
func TestSupervisionExportMarked(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.newCase(CaseOptions{Label: "Supervision spring", X25519: true, NoPassphrase: true, Type: TypeSupervision})
	if err != nil || !c.IsSupervision() {
		t.Fatalf("%v %+v", err, c)
	}
	out := filepath.Join(t.TempDir(), "review.mkv")
	if _, _, _, err := h.ExportFor(t.Context(), c, VaultRecording{ID: "0123456789abcdef"}, nil, out, ScopeSharedReview, time.Now(), false); err == nil || !strings.Contains(err.Error(), "supervision only") {
		t.Errorf("a supervision case exported for shared review: %v", err)
	}
	if err := h.GiveConsent(c, Consent{Who: "family", Date: "2026-01-01", SharedReview: true}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.ExportFor(t.Context(), c, VaultRecording{ID: "0123456789abcdef"}, nil, out, "", time.Now(), false); err == nil || !strings.Contains(err.Error(), "does not cover supervision") {
		t.Errorf("supervision export without consent to supervision: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused export was written")
	}
}

// Retention: the service's period is a setting; cases due are listed; the
// retention run is in the case's laptop chain.
func TestRetentionSettingAndLog(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if h.RetentionDays() != DefaultRetentionDays {
		t.Fatalf("default retention %d", h.RetentionDays())
	}
	days := 30
	if err := h.SaveSettings(Settings{RetentionDays: &days}); err != nil || h.RetentionDays() != 30 {
		t.Fatalf("retention setting: %v %d", err, h.RetentionDays())
	}
	bad := -2
	if err := h.SaveSettings(Settings{RetentionDays: &bad}); err == nil {
		t.Error("a negative retention was taken")
	}
	c, _ := h.NewCase("Family E", true, "")
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	if _, err := h.CloseCase(t.Context(), c, nil, CloseOptions{RetentionDays: h.RetentionDays(), Now: now}); err != nil {
		t.Fatal(err)
	}
	if due, _ := h.Due(now, 14*24*time.Hour); len(due) != 0 {
		t.Errorf("due a month early: %v", due)
	}
	if due, _ := h.Due(now.AddDate(0, 0, 20), 14*24*time.Hour); len(due) != 1 {
		t.Errorf("not due ten days before: %v", due)
	}
	if done, err := h.EraseExpired(now.AddDate(0, 0, 31)); err != nil || len(done) != 1 {
		t.Fatalf("retention run: %v %v", err, done)
	}
	recs, _ := h.LaptopChain(c)
	if last := recs[len(recs)-1]; last.Event != custody.EventCaseErased || last.Detail != "retention" {
		t.Errorf("retention run not logged: %+v", recs)
	}
}
