package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

// TestCaseClose: close refuses while footage is unsynced, succeeds after
// sync with a verified erasure certificate; afterwards no recording byte
// remains on the device and the old laptop key gets nothing; the audit
// report tells the chain of custody; erasing the case makes the vault
// undecryptable and list says so.
func TestCaseClose(t *testing.T) {
	e := newPaired(t)
	e.d.Record(t, 3*time.Second, 1500*time.Millisecond)
	id := e.deviceRecordings()[0]

	out, err := e.attune("case", "close", "Family A")
	if err == nil || !strings.Contains(out, "never synced") || !strings.Contains(out, id) {
		t.Fatalf("close with unsynced footage: %v\n%s", err, out)
	}
	if len(e.deviceRecordings()) != 1 {
		t.Fatal("a refused close changed the device")
	}
	if _, out, err := e.syncJSON(); err != nil {
		t.Fatal(err, out)
	}
	home, _ := laptop.OpenHome(e.home)
	devs, _ := home.Devices()
	oldDev := *devs[0]

	out, err = e.attune("case", "close", "Family A", "--retention", "30")
	if err != nil || !strings.Contains(out, "erasure certificate verified") {
		t.Fatalf("close: %v\n%s", err, out)
	}
	// No recording byte remains under DATA.
	filepath.WalkDir(filepath.Join(e.d.Data, "recordings"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left on the device after the reset: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(e.d.Data, "pairing.json")); !os.IsNotExist(err) {
		t.Error("pairing survived the reset")
	}
	// The old laptop key gets nothing: the device key changed (pin check
	// fails), and even trusting the new device key the laptop is refused.
	e.d.WaitLog(t, "new device key after the reset", 5*time.Second)
	cert, _, _ := home.Cert()
	old, _ := link.NewClient(&net.Dialer{}, oldDev.Addr, cert, oldDev.Pin)
	if _, err := old.Recordings(t.Context()); err == nil {
		t.Fatal("old laptop key still lists recordings after the reset")
	}
	old.Close()
	if p := e.d.PanelState(t); p.State != "not_paired" {
		t.Errorf("after the reset the panel shows %s", p.State)
	}

	// The certificate verifies against the paired key; a tampered one fails.
	cases, _ := home.Cases()
	cs := cases[0]
	certs, err := home.Certificates(cs)
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificates kept: %v %d", err, len(certs))
	}
	c, err := custody.VerifyCertificatePin(certs[0].Signed, oldDev.Pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Recordings) != 0 && c.Recordings[0].ID != id {
		t.Errorf("certificate lists %+v", c.Recordings)
	}
	bad := append([]byte(nil), certs[0].Signed...)
	bad[len(bad)/2] ^= 1
	if _, err := custody.VerifyCertificatePin(bad, oldDev.Pin); err == nil {
		t.Error("a tampered certificate verified")
	}
	if cs.Closed == nil || cs.RetentionDays == nil || *cs.RetentionDays != 30 {
		t.Errorf("case after close: %+v", cs)
	}

	// The chain of custody.
	html := filepath.Join(e.dir, "audit.html")
	out, err = e.attune("audit", "Family A", "--html", html)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "intact") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(html); !strings.Contains(string(b), "<html") || !strings.Contains(string(b), id) {
		t.Error("audit HTML page missing or without the recording")
	}

	// Erase now: the vault can no longer be decrypted, list says erased.
	out, err = e.attune("case", "erase", "Family A", "--yes")
	if err != nil || !strings.Contains(out, "can no longer be decrypted") {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if _, err := home.Identity(cs, nil); err == nil {
		t.Fatal("case key still loads after erasure")
	}
	if out, err := e.attune("export", id, "--out", filepath.Join(e.dir, "x.mkv")); err == nil {
		t.Fatalf("export after erasure succeeded: %s", out)
	}
	out, _ = e.attune("list", "--json")
	var list struct {
		Cases []struct{ State string }
	}
	json.Unmarshal([]byte(out), &list)
	if len(list.Cases) != 1 || list.Cases[0].State != "erased" {
		t.Errorf("list after erase: %s", out)
	}
}

// TestDeviceResetChord: REC+PAIR held 10 s then REC on the device, and
// REC once more because the recording was never synced (LoSE), resets it;
// the certificate waits on the device and reaches the laptop at the next
// pairing's first sync.
func TestDeviceResetChord(t *testing.T) {
	e := newPaired(t)
	e.d.Record(t, 2*time.Second)
	e.d.Press(t, 10300, "rec", "pair")
	e.d.WaitState(t, "confirm_reset")
	time.Sleep(300 * time.Millisecond) // a hand lets go before it presses again (faster is a contact bounce)
	e.d.Press(t, 100, "rec")
	if p := e.d.WaitState(t, "confirm_loss"); p.Display != "LoSE" {
		t.Fatalf("second confirmation shows %q, want LoSE", p.Display)
	}
	if len(e.deviceRecordings()) != 1 {
		t.Fatal("unsynced footage erased before the second confirmation")
	}
	time.Sleep(300 * time.Millisecond)
	e.d.Press(t, 100, "rec")
	e.d.WaitState(t, "not_paired")
	if len(e.deviceRecordings()) != 0 {
		t.Fatal("recordings survived the reset")
	}
	code := e.d.OpenPairing(t)
	if out, err := e.attune("pair", "--device", e.d.Link, "--code", code, "--case", "Family B"); err != nil {
		t.Fatal(err, out)
	}
	out, err := e.attune("sync")
	if err != nil || !strings.Contains(out, "1 erasure certificate") {
		t.Fatalf("first sync after the reset: %v\n%s", err, out)
	}
	home, _ := laptop.OpenHome(e.home)
	cs, _ := home.Cases()
	var found bool
	for _, c := range cs {
		if certs, _ := home.Certificates(c); len(certs) == 1 {
			// The first laptop knew the old key: it verifies.
			if certs[0].Pin == "" {
				t.Error("certificate from the old device key not verified")
			}
			if cert, err := custody.VerifyCertificatePin(certs[0].Signed, certs[0].Pin); err != nil || len(cert.Recordings) != 1 || cert.Recordings[0].Segments[0].Synced {
				t.Errorf("certificate: %v %+v", err, cert)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no certificate kept")
	}
}

// TestCaseNew: a new case's recipients go to the paired device, and the
// recordings made after it belong to the new case.
func TestCaseNew(t *testing.T) {
	e := newPaired(t)
	out, err := e.attune("case", "new", "Family B", "--x25519")
	if err != nil || !strings.Contains(out, "records to it from now on") {
		t.Fatalf("case new: %v\n%s", err, out)
	}
	e.d.Record(t, 2*time.Second)
	if _, out, err := e.syncJSON(); err != nil {
		t.Fatal(err, out)
	}
	out, err = e.attune("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Cases      []struct{ Label string }
		Recordings []struct {
			Label  string `json:"case_label"`
			Synced bool
		}
	}
	json.Unmarshal([]byte(out), &list)
	if len(list.Cases) != 2 || len(list.Recordings) != 1 || list.Recordings[0].Label != "Family B" || !list.Recordings[0].Synced {
		t.Fatalf("list: %s", out)
	}
	out, _ = e.attune("case", "list")
	if !strings.Contains(out, "Family A") || !strings.Contains(out, "x25519") {
		t.Errorf("case list:\n%s", out)
	}
}
