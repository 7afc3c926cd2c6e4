package system

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"attune.dev/attune/link"
)

// pairingFile is the device's pairing: the laptop's pin and the current
// case's recipients. It holds no personal data (the case reference is
// opaque) and no key that can decrypt footage.
const pairingFile = "pairing.json"

type pairingState struct {
	LaptopPin  string   `json:"laptop_pin"`
	Recipients []string `json:"recipients"`
	CaseRef    string   `json:"case_ref"`
}

// LinkBackend connects the paired-link server to the daemon: pairing
// windows from the front panel, the pairing persisted under the data dir,
// the clock, the store. It implements link.Backend.
type LinkBackend struct {
	D        *Daemon
	Data     string // data dir, where pairing.json lives
	DeviceID string
	Version  string

	mu    sync.Mutex
	state pairingState
}

var _ link.Backend = (*LinkBackend)(nil)

// LoadPairing reads the saved pairing, if any, and hands its recipients to
// the daemon. A device with a recipients file but no pairing keeps the
// file's recipients.
func (b *LinkBackend) LoadPairing() error {
	raw, err := os.ReadFile(filepath.Join(b.Data, pairingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load pairing: %v", err)
	}
	var st pairingState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("load pairing: %s is damaged (%v); pair again after removing it", pairingFile, err)
	}
	c, err := link.NewCase(st.Recipients, st.CaseRef)
	if err != nil {
		return fmt.Errorf("load pairing: %v", err)
	}
	b.mu.Lock()
	b.state = st
	b.mu.Unlock()
	rc := c.Parsed
	rc.CaseRef = c.Ref
	b.D.SetRecipients(rc)
	return nil
}

func (b *LinkBackend) save(st pairingState) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(b.Data, pairingFile), raw)
}

// PairingCode is the code on the display while a pairing window is open.
func (b *LinkBackend) PairingCode() (string, bool) {
	st := b.D.Status()
	return st.Code, st.State == StatePairing && st.Code != ""
}

// PairingFailed closes the window after too many wrong codes.
func (b *LinkBackend) PairingFailed() {
	b.D.Log.Warn("pairing window closed: too many wrong codes")
	b.D.Send(EventPairingDone)
}

// Paired saves the new pairing, then makes it active.
func (b *LinkBackend) Paired(p link.Pairing) error {
	st := pairingState{LaptopPin: p.LaptopPin, Recipients: p.Case.Recipients, CaseRef: p.Case.Ref}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.save(st); err != nil {
		return fmt.Errorf("pairing not saved: %v", err)
	}
	b.state = st
	rc := p.Case.Parsed
	rc.CaseRef = p.Case.Ref
	b.D.SetRecipients(rc)
	b.D.Log.Info("paired", "recipients", len(p.Case.Recipients), "kind", rc.Kind)
	b.D.Send(EventPairingDone)
	return nil
}

// LaptopPin is the paired laptop's pin, "" if unpaired.
func (b *LinkBackend) LaptopPin() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.LaptopPin
}

// Status describes the device.
func (b *LinkBackend) Status() link.Status {
	st := b.D.Status()
	free, _ := b.D.Rec.Store.Free()
	now, trusted := b.D.Rec.Clock.Wall()
	return link.Status{
		State: string(st.State), DeviceID: b.DeviceID, Version: b.Version,
		Storage: link.StorageStatus{FreeBytes: free, MinutesLeft: st.MinutesLeft},
		Clock:   link.ClockStatus{Now: now.UTC(), Trusted: trusted},
	}
}

// SetClock sets the wall clock from the laptop.
func (b *LinkBackend) SetClock(t time.Time) error {
	if err := b.D.Rec.Clock.Set(t); err != nil {
		return err
	}
	b.D.Log.Info("clock set by the paired laptop")
	return nil
}

// SetRecipients starts a new case.
func (b *LinkBackend) SetRecipients(c link.Case) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state
	st.Recipients, st.CaseRef = c.Recipients, c.Ref
	if err := b.save(st); err != nil {
		return fmt.Errorf("recipients not saved: %v", err)
	}
	b.state = st
	rc := c.Parsed
	rc.CaseRef = c.Ref
	b.D.SetRecipients(rc)
	b.D.Log.Info("new case recipients", "recipients", len(c.Recipients))
	return nil
}

// Store is the segment store.
func (b *LinkBackend) Store() link.Store { return b.D.Rec.Store }

// Forget removes the pairing (factory reset).
func (b *LinkBackend) Forget() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = pairingState{}
	err := os.Remove(filepath.Join(b.Data, pairingFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

// DeviceName is the mDNS instance name for a device id.
func DeviceName(id string) string { return "attune-" + strings.ToLower(id) }

// writeFileAtomic writes a small file: temp name, fsync, rename, fsync dir.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
