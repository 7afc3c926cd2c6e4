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

	"attune.dev/attune/custody"
	"attune.dev/attune/device"
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
	// Cases are the case references this laptop paired or started since
	// it paired, CaseRef among them: the recordings it may acknowledge.
	Cases []string `json:"cases,omitempty"`
}

// owns reports whether the paired laptop paired or started case ref.
func (st pairingState) owns(ref string) bool {
	if st.LaptopPin == "" {
		return false
	}
	for _, c := range st.Cases {
		if c == ref {
			return true
		}
	}
	// A pairing saved before Cases existed knows its current case only.
	return len(st.Cases) == 0 && st.CaseRef == ref
}

// withCase is st with ref as the current case, remembered among its cases.
func (st pairingState) withCase(recipients []string, ref string) pairingState {
	if len(st.Cases) == 0 && st.LaptopPin != "" {
		st.Cases = []string{st.CaseRef}
	}
	st.Recipients, st.CaseRef = recipients, ref
	if !st.owns(ref) {
		st.Cases = append(append([]string(nil), st.Cases...), ref)
	}
	return st
}

// linkBackend connects the paired-link server to the daemon: pairing
// windows from the front panel, the pairing persisted under the data dir,
// the clock, the store, the audit chain and the factory reset. Run builds
// it.
type linkBackend struct {
	d       *Daemon
	data    string // data dir, where pairing.json lives
	version string
	chain   *Audit
	// keyPath is where the device key is kept. A reset deletes it and
	// signals rotated; the link then serves with a new key (and calls
	// setKey).
	keyPath string
	rotated chan struct{}

	mu       sync.Mutex
	key      ed25519.PrivateKey // signs erasure certificates
	deviceID string
	state    pairingState
	resetMu  sync.Mutex
}

var _ link.Backend = (*linkBackend)(nil)

// setKey installs the device key (at start, and after a reset made a new
// one).
func (b *linkBackend) setKey(key ed25519.PrivateKey, deviceID string) {
	b.mu.Lock()
	b.key, b.deviceID = key, deviceID
	b.mu.Unlock()
}

// loadPairing reads the saved pairing, if any, and hands its recipients to
// the daemon. A device with a recipients file but no pairing keeps the
// file's recipients.
func (b *linkBackend) loadPairing() error {
	raw, err := os.ReadFile(filepath.Join(b.data, pairingFile))
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
	if st.LaptopPin != "" && len(st.Recipients) == 0 {
		// The laptop closed the case: paired, no case.
		b.mu.Lock()
		b.state = st
		b.mu.Unlock()
		b.d.SetNoCase()
		return nil
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
	b.d.SetRecipients(rc)
	return nil
}

func (b *linkBackend) save(st pairingState) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(filepath.Join(b.data, pairingFile), raw, 0o600)
}

// PairingCode is the code on the display while a pairing window is open.
func (b *linkBackend) PairingCode() (string, bool) {
	st := b.d.Status()
	return st.Code, st.State == device.StatePairing && st.Code != ""
}

// PairingFailed closes the window after too many wrong codes.
func (b *linkBackend) PairingFailed() {
	b.d.Log.Warn("pairing window closed: too many wrong codes")
	note(b.chain, b.d.Log, custody.Record{Event: custody.EventPairingFailed})
	b.d.Send(device.EventPairingDone)
}

// errUnsyncedPairing refuses a pairing while footage is unsynced: a new
// laptop would lock the paired one out of it.
var errUnsyncedPairing = errors.New("pairing refused: the device holds footage that was never synced; sync it with the laptop it was recorded for first, or erase it with a factory reset")

// Paired saves the new pairing, then makes it active. It refuses while
// footage is unsynced (the front panel opens no window then either).
func (b *linkBackend) Paired(p link.Pairing) error {
	if un, err := b.d.Rec.Store.Unsynced(); err != nil {
		return fmt.Errorf("pairing refused: %v", err)
	} else if len(un) > 0 {
		return errUnsyncedPairing
	}
	st := pairingState{LaptopPin: p.LaptopPin, Recipients: p.Case.Recipients, CaseRef: p.Case.Ref, Cases: []string{p.Case.Ref}}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.save(st); err != nil {
		return fmt.Errorf("pairing not saved: %v", err)
	}
	b.state = st
	rc := p.Case.Parsed
	rc.CaseRef = p.Case.Ref
	b.d.SetRecipients(rc)
	b.d.Log.Info("paired", "recipients", len(p.Case.Recipients), "kind", rc.Kind)
	note(b.chain, b.d.Log, custody.Record{Event: custody.EventPaired, CaseRef: custody.CaseRef(p.Case.Ref)})
	b.d.Send(device.EventPairingDone)
	return nil
}

// LaptopPin is the paired laptop's pin, "" if unpaired.
func (b *linkBackend) LaptopPin() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.LaptopPin
}

// Status describes the device.
func (b *linkBackend) Status() link.Status {
	st := b.d.Status()
	free, _ := b.d.Rec.Store.Free()
	now, trusted := b.d.Rec.Clock.Wall()
	b.mu.Lock()
	device := b.deviceID
	b.mu.Unlock()
	out := link.Status{
		State: string(st.State), DeviceID: device, Version: b.version, Case: st.Case,
		Storage: link.StorageStatus{FreeBytes: free, MinutesLeft: st.MinutesLeft},
		Clock:   link.ClockStatus{Now: now.UTC(), Trusted: trusted},
	}
	if st.Battery >= 0 { // -1: no gauge
		pct := st.Battery
		out.Battery = &pct
	}
	return out
}

// SetClock sets the wall clock from the laptop.
func (b *linkBackend) SetClock(t time.Time) error {
	if err := b.d.Rec.Clock.Set(t); err != nil {
		return err
	}
	b.d.Log.Info("clock set by the paired laptop")
	note(b.chain, b.d.Log, custody.Record{Event: custody.EventClockSet})
	return nil
}

// SetRecipients starts a new case, or with a zero c forgets the closed one.
func (b *linkBackend) SetRecipients(c link.Case) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.state
	if len(c.Recipients) == 0 {
		old := st.CaseRef
		st.Recipients, st.CaseRef = nil, ""
		if err := b.save(st); err != nil {
			return fmt.Errorf("recipients not cleared: %v", err)
		}
		b.state = st
		b.d.SetNoCase()
		b.d.Log.Info("case closed by the paired laptop: no case")
		note(b.chain, b.d.Log, custody.Record{Event: custody.EventCaseCleared, CaseRef: custody.CaseRef(old)})
		return nil
	}
	st = st.withCase(c.Recipients, c.Ref)
	if err := b.save(st); err != nil {
		return fmt.Errorf("recipients not saved: %v", err)
	}
	b.state = st
	rc := c.Parsed
	rc.CaseRef = c.Ref
	b.d.SetRecipients(rc)
	b.d.Log.Info("new case recipients", "recipients", len(c.Recipients))
	note(b.chain, b.d.Log, custody.Record{Event: custody.EventPaired, CaseRef: custody.CaseRef(c.Ref), Detail: "new_case"})
	return nil
}

// Store is the segment store, with transfers, acknowledgements and
// deletions written to the audit chain.
func (b *linkBackend) Store() link.Store { return auditedStore{b.d.Rec.Store, b} }

type auditedStore struct {
	*storage.Store
	b *linkBackend
}

// SegmentSent: the link server sent the whole of a segment to the paired
// laptop (link.Backend.SegmentSent). A refused or partial download is no
// transfer.
func (b *linkBackend) SegmentSent(id string, n int) {
	if custody.ValidID(id) {
		note(b.chain, b.d.Log, custody.Record{Event: custody.EventSegmentTransferred, Recording: id, Segments: []int{n}})
	}
}

// Ack acknowledges and deletes, and says so in the chain: what was
// acknowledged (and so deleted), and, once the whole recording is gone
// from the device, that it was. It refuses (link.ErrOtherCase), deleting
// nothing, a recording sealed for a case the paired laptop did not pair
// or start.
func (s auditedStore) Ack(id string, segments []int, manifest bool) (*storage.Index, error) {
	cur, err := s.Store.Index(id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ack: recording %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("ack: %v", err)
	}
	s.b.mu.Lock()
	owned := s.b.state.owns(cur.CaseRef)
	s.b.mu.Unlock()
	if !owned {
		return nil, fmt.Errorf("ack %s: %w", id, link.ErrOtherCase)
	}
	ix, err := s.Store.Ack(id, segments, manifest)
	if err != nil {
		return ix, err
	}
	detail := ""
	if manifest {
		detail = "manifest"
	}
	note(s.b.chain, s.b.d.Log, custody.Record{Event: custody.EventAcknowledged, Recording: id, Segments: segments, Detail: detail})
	if _, err := s.Store.Index(id); errors.Is(err, fs.ErrNotExist) {
		note(s.b.chain, s.b.d.Log, custody.Record{Event: custody.EventDeleted, Recording: id, Count: len(ix.Segments)})
	}
	return ix, nil
}

// Audit returns the chain after seq, as written.
func (b *linkBackend) Audit(after uint64) ([]byte, error) {
	if b.chain == nil {
		return nil, nil
	}
	_, raw, err := b.chain.Records(after)
	return raw, err
}

// Reset is a factory reset asked for by the paired laptop.
func (b *linkBackend) Reset(force bool) ([]byte, error) { return b.factoryReset(force, "laptop") }

// certDir keeps erasure certificates until a laptop has them.
func (b *linkBackend) certDir() string { return filepath.Join(b.data, "certificates") }

// factoryReset erases every recording, the pairing and the device key,
// and returns the erasure certificate signed by the old key; a copy stays
// on the device for the next paired laptop. by says who asked ("laptop",
// "buttons"). Without force it refuses while unsynced footage is present.
func (b *linkBackend) factoryReset(force bool, by string) ([]byte, error) {
	b.resetMu.Lock()
	defer b.resetMu.Unlock()
	store := b.d.Rec.Store
	if st := b.d.Status().State; st == device.StateRecording {
		return nil, errors.New("reset: the device is recording; stop the recording first")
	}
	unsynced, err := store.Unsynced()
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if !force && len(unsynced) > 0 {
		return nil, link.ErrUnsynced
	}
	b.mu.Lock()
	key, device := b.key, b.deviceID
	b.mu.Unlock()
	cert, err := BuildCertificate(store, b.chain, device)
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	signed, err := custody.SignCertificate(cert, key)
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if err := os.MkdirAll(b.certDir(), 0o700); err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	name := fmt.Sprintf("erasure-%s-%d.json", device, b.d.Clock.Now().UnixNano())
	if err := storage.WriteFileAtomic(filepath.Join(b.certDir(), name), signed, 0o600); err != nil {
		return nil, fmt.Errorf("reset: certificate not saved, nothing erased: %v", err)
	}
	n, err := store.EraseAll()
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	b.d.SetRecipients(storage.Recipients{})
	if err := b.forget(); err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	if b.keyPath != "" {
		if err := os.Remove(b.keyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reset: device key not destroyed: %v", err)
		}
	}
	// The reset record follows the head the certificate signed; then the
	// chain keeps only it, so the next laptop learns nothing of the
	// erased cases' recordings and still verifies continuity.
	if b.chain != nil {
		if _, err := b.chain.Append(custody.Record{Event: custody.EventReset, Count: n, SHA256: custody.CertificateDigest(signed), Detail: by}); err != nil {
			b.d.Log.Error("audit record not written", "event", string(custody.EventReset), "err", err)
		} else if err := b.chain.Compact(); err != nil {
			b.d.Log.Error("factory reset: earlier audit records not removed", "err", err)
		}
	}
	b.d.Log.Warn("factory reset: recordings erased, pairing and device key destroyed", "recordings", n, "by", by)
	select {
	case b.rotated <- struct{}{}:
	default: // a rotation is pending already
	}
	return signed, nil
}

// Certificates are the erasure certificates kept on the device.
func (b *linkBackend) Certificates() ([][]byte, error) {
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

// forget removes the pairing (factory reset).
func (b *linkBackend) forget() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state = pairingState{}
	err := os.Remove(filepath.Join(b.data, pairingFile))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return err
}

// deviceName is the mDNS instance name for a device id.
func deviceName(id string) string { return "attune-" + strings.ToLower(id) }
