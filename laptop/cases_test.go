package laptop

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

func TestHomeFor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		goos string
		env  func(string) string
		want string // "" wants an error
	}{
		{"linux", env("HOME", "/home/ann"), "/home/ann/.local/share/attune"},
		{"linux", env("HOME", "/home/ann", "XDG_DATA_HOME", "/data/ann"), "/data/ann/attune"},
		{"linux", env("HOME", "/home/ann", "ATTUNE_HOME", "/srv/attune"), "/srv/attune"},
		{"linux", env(), ""},
		{"freebsd", env("HOME", "/home/ann"), "/home/ann/.local/share/attune"},
		{"darwin", env("HOME", "/Users/ann"), "/Users/ann/Library/Application Support/Attune"},
		{"darwin", env("HOME", "/Users/ann", "XDG_DATA_HOME", "/elsewhere"), "/Users/ann/Library/Application Support/Attune"},
		{"darwin", env(), ""},
		{"windows", env("LOCALAPPDATA", `C:\Users\ann\AppData\Local`, "USERPROFILE", `C:\Users\ann`), `C:\Users\ann\AppData\Local\Attune`},
		{"windows", env("LOCALAPPDATA", `C:\Users\ann\AppData\Local\`), `C:\Users\ann\AppData\Local\Attune`},
		{"windows", env("USERPROFILE", `C:\Users\ann`), `C:\Users\ann\AppData\Local\Attune`},
		{"windows", env("ATTUNE_HOME", `D:\attune`), `D:\attune`},
		{"windows", env("HOME", "/home/ann"), ""},
	} {
		got, err := homeFor(tc.goos, tc.env)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "ATTUNE_HOME") {
				t.Errorf("%s: got %q, %v; want an error that points to ATTUNE_HOME", tc.goos, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.goos, got, err, tc.want)
		}
	}
}

func TestResolvePrefix(t *testing.T) {
	ids := []string{"3f9c0a7d52e1b864", "3f9c11aa00000000", "a0b1c2d3e4f50617"}
	for _, tc := range []struct {
		ref  string
		want int
		err  string
	}{
		{"3f9c0a7d52e1b864", 0, ""},
		{"3F9C0A", 0, ""},
		{"3f9c1", 1, ""},
		{"a0b1", 2, ""},
		{"3f9c", -1, "3f9c0a7d52e1b864, 3f9c11aa00000000"},
		{"a0b", -1, errTooShort.Error()},
		{"ffff", -1, errNoMatch.Error()},
		{"Family A", -1, errNoMatch.Error()},
		{"a0b1c2d3e4f506170", -1, errNoMatch.Error()},
	} {
		got, err := resolvePrefix(tc.ref, ids)
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%q: %d %v, want %d", tc.ref, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %d %v, want an error with %q", tc.ref, got, err, tc.err)
		}
	}
}

func TestFindCaseAndRecording(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := h.NewCase("Family A", true, "")
	b, _ := h.NewCase("Family B", true, "")
	for _, ref := range []string{a.ID, "Family A", a.ID[:MinPrefix], strings.ToUpper(a.ID[:8])} {
		if a.ID[:MinPrefix] == b.ID[:MinPrefix] && ref == a.ID[:MinPrefix] {
			continue // the two random ids happen to share the prefix
		}
		if c, err := h.FindCase(ref); err != nil || c.ID != a.ID {
			t.Errorf("FindCase(%q): %v %v", ref, c, err)
		}
	}
	for ref, want := range map[string]string{
		"":         "give a case id or label",
		"Family C": `no case "Family C"`,
		"abc":      "at least 4 characters",
	} {
		if _, err := h.FindCase(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FindCase(%q): %v, want %q", ref, err, want)
		}
	}

	for _, id := range []string{"3f9c0a7d52e1b864", "3f9c11aa00000000"} {
		os.MkdirAll(h.recordingDir(a.ID, id), 0o700)
	}
	if vr, err := h.FindRecording("3f9c0"); err != nil || vr.ID != "3f9c0a7d52e1b864" || vr.Case != a.ID {
		t.Errorf("FindRecording by prefix: %+v %v", vr, err)
	}
	if _, err := h.FindRecording("3f9c"); err == nil || !strings.Contains(err.Error(), "3f9c0a7d52e1b864, 3f9c11aa00000000") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := h.FindRecording("3f9"); err == nil || !strings.Contains(err.Error(), "at least 4") {
		t.Errorf("short prefix: %v", err)
	}
	if _, err := h.FindRecording("ffffffff"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown recording: %v", err)
	}
}

func TestVaultRecordingHeld(t *testing.T) {
	dir := t.TempDir()
	ix := &storage.Index{ID: "3f9c0a7d52e1b864", State: storage.Complete, Segments: make([]storage.FileInfo, 3)}
	vr := VaultRecording{ID: ix.ID, Dir: dir, Index: ix}
	for n := range 2 {
		os.WriteFile(filepath.Join(dir, storage.SegmentName(n)), []byte("c"), 0o600)
	}
	if vr.Held() != 2 || vr.Synced() {
		t.Fatalf("2 of 3 segments: held %d, synced %v", vr.Held(), vr.Synced())
	}
	os.WriteFile(filepath.Join(dir, storage.SegmentName(2)), []byte("c"), 0o600)
	if vr.Held() != 3 || vr.Synced() {
		t.Fatalf("no manifest: held %d, synced %v", vr.Held(), vr.Synced())
	}
	os.WriteFile(filepath.Join(dir, storage.ManifestName), []byte("m"), 0o600)
	if !vr.Synced() {
		t.Fatal("every segment and the manifest: not synced")
	}
	ix.State = storage.Recording
	if vr.Synced() {
		t.Fatal("a recording still running is synced")
	}
}

func TestContainerFor(t *testing.T) {
	for _, ok := range []string{"visit.mkv", "VISIT.MKV", "dir.d/visit.mka"} {
		if c, err := ContainerFor(ok); err != nil || c != Matroska {
			t.Errorf("%s: %q %v", ok, c, err)
		}
	}
	for name, want := range map[string]string{"visit.mp4": "visit.mkv", "visit": "FILE.mkv", "visit.webm": "visit.mkv"} {
		if _, err := ContainerFor(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error that says %s", name, err, want)
		}
	}
}

// fakeResetDevice is a device at the end of a case.
type fakeResetDevice struct {
	key      ed25519.PrivateKey
	unsynced []*storage.Index // what Reset without force refuses for
	resets   int
	cleared  int
	closed   bool
}

var _ ResetAPI = (*fakeResetDevice)(nil)

func (d *fakeResetDevice) Audit(context.Context, uint64) ([]byte, error) { return nil, nil }
func (d *fakeResetDevice) Certificates(context.Context) ([][]byte, error) {
	return nil, nil
}
func (d *fakeResetDevice) Recordings(context.Context) ([]*storage.Index, error) {
	return d.unsynced, nil
}
func (d *fakeResetDevice) Close() { d.closed = true }
func (d *fakeResetDevice) ClearRecipients(context.Context) error {
	d.cleared++
	return nil
}

func (d *fakeResetDevice) Reset(_ context.Context, force bool) ([]byte, error) {
	if len(d.unsynced) > 0 && !force {
		return nil, fmt.Errorf("reset: %w", link.ErrUnsynced)
	}
	d.resets++
	cert := custody.Certificate{Device: "0a1b2c3d4e5f6071", Issued: time.Now().UTC(), AuditSeq: 1, AuditHead: strings.Repeat("cd", 32)}
	for _, ix := range d.unsynced {
		er := custody.ErasedRecording{ID: ix.ID, State: string(ix.State)}
		for _, s := range ix.Segments {
			er.Segments = append(er.Segments, custody.ErasedSegment{SHA256: s.SHA256, Size: s.Size, Synced: s.Acked})
		}
		cert.Recordings = append(cert.Recordings, er)
	}
	return custody.SignCertificate(cert, d.key)
}

// pairedHome is a home with a case and a device recording to it whose key
// is key.
func pairedHome(t *testing.T) (*Home, *Case, *Device, ed25519.PrivateKey) {
	t.Helper()
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.NewCase("Family A", true, "")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	tc, err := link.SelfSignedCert(key, "attune-test")
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := link.CertPin(tc)
	dev := &Device{ID: "0a1b2c3d4e5f6071", Pin: pin, Addr: "192.0.2.1:8443", Case: c.ID, Paired: time.Now()}
	if err := h.SaveDevice(dev); err != nil {
		t.Fatal(err)
	}
	return h, c, dev, key
}

func TestCloseCase(t *testing.T) {
	h, c, dev, key := pairedHome(t)
	fake := &fakeResetDevice{key: key, unsynced: []*storage.Index{{ID: "3f9c0a7d52e1b864", State: storage.Complete,
		Segments: []storage.FileInfo{{Name: storage.SegmentName(0), Size: 10, SHA256: strings.Repeat("ab", 32)}}}}}
	var reached []string
	connect := func(d *Device) (ResetAPI, error) {
		reached = append(reached, d.Addr)
		return fake, nil
	}

	// Unsynced footage on the device: refused, nothing changes.
	_, err := h.CloseCase(t.Context(), c, connect, CloseOptions{RetentionDays: 30})
	if err == nil || !strings.Contains(err.Error(), "never synced") || !strings.Contains(err.Error(), "3f9c0a7d52e1b864") {
		t.Fatalf("close with unsynced footage: %v", err)
	}
	if c2, _ := h.Case(c.ID); c2.Closed != nil || fake.resets != 0 || !fake.closed {
		t.Fatalf("a refused close changed something: case %+v, %d resets, connection closed %v", c2, fake.resets, fake.closed)
	}

	// Forced, at another address: the device is reset and forgotten, the
	// certificate kept, the case closed with its retention.
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	res, err := h.CloseCase(t.Context(), c, connect, CloseOptions{RetentionDays: 30, Force: true, Addr: "192.0.2.9:8443", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if reached[len(reached)-1] != "192.0.2.9:8443" {
		t.Errorf("reached the device at %v", reached)
	}
	if res.Device == nil || res.Device.ID != dev.ID || res.Recordings != 1 || res.Segments != 1 || res.Unsynced != 1 || res.CertificateFile == "" || res.CustodyErr != nil {
		t.Errorf("result %+v", res)
	}
	if !res.EraseDue.Equal(now.AddDate(0, 0, 30)) {
		t.Errorf("erase due %v", res.EraseDue)
	}
	if devs, _ := h.Devices(); len(devs) != 0 {
		t.Errorf("the reset device is still paired: %+v", devs)
	}
	c2, _ := h.Case(c.ID)
	if c2.Closed == nil || c2.RetentionDays == nil || *c2.RetentionDays != 30 {
		t.Errorf("case after close: %+v", c2)
	}
	if certs, err := h.Certificates(c2); err != nil || len(certs) != 1 || certs[0].Pin != dev.Pin {
		t.Errorf("certificates kept: %v %+v", err, certs)
	}
	if _, err := h.CloseCase(t.Context(), c2, connect, CloseOptions{}); err == nil || !strings.Contains(err.Error(), "already closed") {
		t.Errorf("second close: %v", err)
	}
}

// TestCloseCaseRetention: no retention erases at the next run; a case
// closed by an older attune with "retention_days": -1 too; one with no
// retention recorded keeps the default.
func TestCloseCaseRetention(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.NewCase("Family A", true, "")
	noDevice := func(*Device) (ResetAPI, error) { t.Fatal("no device records to the case"); return nil, nil }
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	res, err := h.CloseCase(t.Context(), c, noDevice, CloseOptions{RetentionDays: 0, Now: now})
	if err != nil || res.Device != nil || !res.EraseDue.Equal(now) {
		t.Fatalf("close without retention: %+v %v", res, err)
	}
	if done, _ := h.EraseExpired(now); len(done) != 1 {
		t.Fatal("a case closed without retention was not erased at the next run")
	}
	for _, tc := range []struct {
		stored string
		due    time.Time
	}{
		{`"retention_days": -1,`, now},
		{``, now.AddDate(0, 0, DefaultRetentionDays)},
	} {
		var old Case
		b := fmt.Appendf(nil, `{"id": "0011223344556677", "label": "old", "closed": %q, %s "recipient_kind": "x25519"}`, now.Format(time.RFC3339), tc.stored)
		if err := json.Unmarshal(b, &old); err != nil {
			t.Fatal(err)
		}
		if due, ok := old.EraseDue(); !ok || !due.Equal(tc.due) {
			t.Errorf("stored %s: erase due %v, want %v", tc.stored, due, tc.due)
		}
	}
	if _, err := h.CloseCase(t.Context(), c, noDevice, CloseOptions{RetentionDays: MaxRetentionDays + 1}); err == nil {
		t.Error("a retention past the maximum was taken")
	}
}

func TestPairFailureRemovesCase(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = h.Pair(t.Context(), failDialer{}, "192.0.2.1:8443", "123456", CaseOptions{Label: "Family A", X25519: true, NoPassphrase: true})
	if err == nil {
		t.Fatal("pairing through a dialer that fails succeeded")
	}
	if cases, _ := h.Cases(); len(cases) != 0 {
		t.Errorf("a case of a failed pairing is left: %+v", cases)
	}
}

type failDialer struct{}

func (failDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no route to host")
}
