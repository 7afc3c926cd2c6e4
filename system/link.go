package system

import (
	"crypto/ed25519"
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
	"attune.dev/attune/storage"
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
	Chain    *Audit
	// Key is the device key that signs erasure certificates; KeyPath is
	// where it is kept. A reset deletes it and calls Rotate, which must
	// give the link a new key (and call SetKey).
	Key     ed25519.PrivateKey
	KeyPath string
	Rotate  func()

	mu          sync.Mutex
	state       pairingState
	resetMu     sync.Mutex
	transferred map[string]bool
}

var _ link.Backend = (*LinkBackend)(nil)

// SetKey installs the device key (after a reset made a new one).
func (b *LinkBackend) SetKey(key ed25519.PrivateKey, deviceID string) {
	b.mu.Lock()
	b.Key, b.DeviceID = key, deviceID
	b.mu.Unlock()
}

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
	return storage.WriteFileAtomic(filepath.Join(b.Data, pairingFile), raw, 0o600)
}

// PairingCode is the code on the display while a pairing window is open.
func (b *LinkBackend) PairingCode() (string, bool) {
	st := b.D.Status()
	return st.Code, st.State == StatePairing && st.Code != ""
}

// PairingFailed closes the window after too many wrong codes.
func (b *LinkBackend) PairingFailed() {
	b.D.Log.Warn("pairing window closed: too many wrong codes")
	note(b.Chain, b.D.Log, AuditRecord{Event: AuditPairingFailed})
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
	note(b.Chain, b.D.Log, AuditRecord{Event: AuditPaired, CaseRef: AuditCaseRef(p.Case.Ref)})
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
	note(b.Chain, b.D.Log, AuditRecord{Event: AuditClockSet})
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
	note(b.Chain, b.D.Log, AuditRecord{Event: AuditPaired, CaseRef: AuditCaseRef(c.Ref), Detail: "new_case"})
	return nil
}

// Store is the segment store, with transfers, acknowledgements and
// deletions written to the audit chain.
func (b *LinkBackend) Store() link.Store { return auditedStore{b.D.Rec.Store, b} }

type auditedStore struct {
	*storage.Store
	b *LinkBackend
}

// SegmentPath is asked for each download: the first of each segment is
// recorded as transferred.
func (s auditedStore) SegmentPath(id string, n int) string {
	key := fmt.Sprintf("%s/%d", id, n)
	s.b.mu.Lock()
	if s.b.transferred == nil {
		s.b.transferred = map[string]bool{}
	}
	first := !s.b.transferred[key]
	s.b.transferred[key] = true
	s.b.mu.Unlock()
	if first && storage.ValidID(id) {
		note(s.b.Chain, s.b.D.Log, AuditRecord{Event: AuditSegmentTransferred, Recording: id, Segments: []int{n}})
	}
	return s.Store.SegmentPath(id, n)
}

// Ack acknowledges and deletes, and says so in the chain.
func (s auditedStore) Ack(id string, segments []int, manifest bool) (*storage.Index, error) {
	ix, err := s.Store.Ack(id, segments, manifest)
	if err != nil {
		return ix, err
	}
	detail := ""
	if manifest {
		detail = "with_manifest"
	}
	note(s.b.Chain, s.b.D.Log, AuditRecord{Event: AuditAcknowledged, Recording: id, Segments: segments, Detail: detail})
	note(s.b.Chain, s.b.D.Log, AuditRecord{Event: AuditDeleted, Recording: id, Segments: segments, Count: len(segments)})
	return ix, nil
}

// Audit returns the chain after seq, as written.
func (b *LinkBackend) Audit(after uint64) ([]byte, error) {
	if b.Chain == nil {
		return nil, nil
	}
	_, raw, err := b.Chain.Records(after)
	return raw, err
}

// Reset is a factory reset asked for by the paired laptop.
func (b *LinkBackend) Reset(force bool) ([]byte, error) { return b.FactoryReset(force, "laptop") }

// certDir keeps erasure certificates until a laptop has them.
func (b *LinkBackend) certDir() string { return filepath.Join(b.Data, "certificates") }

// FactoryReset erases every recording, the pairing and the device key,
// and returns the erasure certificate signed by the old key; a copy stays
// on the device for the next paired laptop. by says who asked ("laptop",
// "buttons"). Without force it refuses while unsynced footage is present.
func (b *LinkBackend) FactoryReset(force bool, by string) ([]byte, error) {
	b.resetMu.Lock()
	defer b.resetMu.Unlock()
	store := b.D.Rec.Store
	if st := b.D.Status().State; st == StateRecording {
		return nil, errors.New("reset: the device is recording; stop the recording first")
	}
	list, err := store.List()
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if !force {
		for _, ix := range list {
			for _, s := range ix.Segments {
				if !s.Acked {
					return nil, link.ErrUnsynced
				}
			}
		}
	}
	b.mu.Lock()
	key, device := b.Key, b.DeviceID
	b.mu.Unlock()
	cert, err := BuildCertificate(store, b.Chain, device)
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	signed, err := SignCertificate(cert, key)
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if err := os.MkdirAll(b.certDir(), 0o700); err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	name := fmt.Sprintf("erasure-%s-%d.json", device, time.Now().UnixNano())
	if err := storage.WriteFileAtomic(filepath.Join(b.certDir(), name), signed, 0o600); err != nil {
		return nil, fmt.Errorf("reset: certificate not saved, nothing erased: %v", err)
	}
	n, err := store.EraseAll()
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	b.D.SetRecipients(storage.Recipients{})
	if err := b.Forget(); err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if b.KeyPath != "" {
		if err := os.Remove(b.KeyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reset: device key not destroyed: %v", err)
		}
	}
	note(b.Chain, b.D.Log, AuditRecord{Event: AuditReset, Count: n, SHA256: CertificateDigest(signed), Detail: by})
	b.D.Log.Warn("factory reset: recordings erased, pairing and device key destroyed", "recordings", n, "by", by)
	if b.Rotate != nil {
		b.Rotate()
	}
	return signed, nil
}

// Certificates are the erasure certificates kept on the device.
func (b *LinkBackend) Certificates() ([][]byte, error) {
	m, err := filepath.Glob(filepath.Join(b.certDir(), "erasure-*.json"))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, p := range m {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

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
