package linktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// Backend is a fake device for link.Server: a pairing window driven by the
// test, pairing and recipients held in memory, a clock that can be set, and
// a real storage.Store.
type Backend struct {
	mu       sync.Mutex
	code     string
	open     bool
	failed   int
	pairings int
	pin      string
	kase     link.Case
	offset   time.Duration
	trusted  bool
	store    *storage.Store
	pairErr  error
	deviceID string
	rewrite  func(*storage.Index)
	sent     []string
	audit    []byte
	certs    [][]byte
}

var (
	_ link.Backend = (*Backend)(nil)
)

// NewBackend returns an unpaired backend whose store lives in dataDir.
func NewBackend(dataDir string) (*Backend, error) {
	st, err := storage.Open(dataDir, storage.Options{MinFree: 1 << 20, Free: func(string) (uint64, error) { return 1 << 40, nil }}, nil)
	if err != nil {
		return nil, err
	}
	return &Backend{store: st, deviceID: "0123456789abcdef"}, nil
}

// SetDeviceID sets the id the fake device gives in its status and its
// pairing answer (a test may make it anything a rogue device might send).
func (b *Backend) SetDeviceID(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deviceID = id
}

// OpenWindow opens a pairing window showing code.
func (b *Backend) OpenWindow(code string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.code, b.open = code, true
}

// CloseWindow closes the pairing window (the window timed out).
func (b *Backend) CloseWindow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = false
}

// FailPairing makes Paired fail with err (nil: succeed again).
func (b *Backend) FailPairing(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pairErr = err
}

// Failed is how many times PairingFailed was called.
func (b *Backend) Failed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// Pairings is how many pairings succeeded.
func (b *Backend) Pairings() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pairings
}

// Case is the current case (zero when unpaired).
func (b *Backend) Case() link.Case {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kase
}

// SetLaptopPin pairs with a laptop without the pairing protocol.
func (b *Backend) SetLaptopPin(pin string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pin = pin
}

// Wall is the fake wall clock and whether it was set.
func (b *Backend) Wall() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Now().Add(b.offset), b.trusted
}

func (b *Backend) PairingCode() (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.code, b.open
}

func (b *Backend) PairingFailed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed++
	b.open = false
}

func (b *Backend) Paired(p link.Pairing) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pairErr != nil {
		return b.pairErr
	}
	b.pin, b.kase, b.open = p.LaptopPin, p.Case, false
	b.pairings++
	return nil
}

func (b *Backend) LaptopPin() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pin
}

func (b *Backend) Status() link.Status {
	now, trusted := b.Wall()
	b.mu.Lock()
	defer b.mu.Unlock()
	state := "ready"
	if b.pin == "" {
		state = "not_paired"
	}
	return link.Status{
		State:    state,
		DeviceID: b.deviceID,
		Version:  "test",
		Storage:  link.StorageStatus{FreeBytes: 1 << 40, MinutesLeft: 9000},
		Clock:    link.ClockStatus{Now: now, Trusted: trusted},
	}
}

// earliest is system.Clock's floor: before it the laptop's clock is wrong.
var earliest = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (b *Backend) SetClock(t time.Time) error {
	if t.Before(earliest) {
		return fmt.Errorf("set clock: %s is before 2026; the laptop's clock is wrong", t.UTC().Format(time.RFC3339))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offset, b.trusted = time.Until(t), true
	return nil
}

func (b *Backend) SetRecipients(c link.Case) error {
	if len(c.Parsed.List) == 0 {
		return errors.New("set recipients: none")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.kase = c
	return nil
}

func (b *Backend) Store() link.Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rewrite != nil {
		return rewriteStore{Store: b.store, rewrite: b.rewrite}
	}
	return b.store
}

// RewriteListing makes the fake device pass every index it lists (GET
// /api/v1/recordings) through f first, as a rogue device might; nil lists
// them as they are.
func (b *Backend) RewriteListing(f func(*storage.Index)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rewrite = f
}

// rewriteStore lists its store's indexes rewritten.
type rewriteStore struct {
	link.Store
	rewrite func(*storage.Index)
}

func (s rewriteStore) List() ([]*storage.Index, error) {
	list, err := s.Store.List()
	for _, ix := range list {
		s.rewrite(ix)
	}
	return list, err
}

// SetAudit sets the audit chain Audit serves: JSON lines, one record each,
// with their "seq" numbers.
func (b *Backend) SetAudit(lines []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.audit = append([]byte(nil), lines...)
}

// Audit returns the lines set by SetAudit whose "seq" is after after.
func (b *Backend) Audit(after uint64) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	for line := range bytes.Lines(b.audit) {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("audit: %v", err)
		}
		if r.Seq > after {
			out = append(out, line...)
		}
	}
	return out, nil
}

// Reset erases every recording and forgets the pairing. Its certificate
// is a placeholder (the fake has no device key to sign with), also kept
// for Certificates. Without force it refuses while a segment is unacked.
func (b *Backend) Reset(force bool) ([]byte, error) {
	list, err := b.store.List()
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
	n, err := b.store.EraseAll()
	if err != nil {
		return nil, fmt.Errorf("reset: %v", err)
	}
	cert := []byte(fmt.Sprintf(`{"device":%q,"recordings":%d}`, b.deviceID, n))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pin, b.kase, b.open = "", link.Case{}, false
	b.certs = append(b.certs, cert)
	return cert, nil
}

// Certificates are the placeholders of the resets done so far.
func (b *Backend) Certificates() ([][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.certs...), nil
}

// SegmentSent notes a segment the server sent whole
// (link.Backend.SegmentSent), as "id/n".
func (b *Backend) SegmentSent(id string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, fmt.Sprintf("%s/%d", id, n))
}

// Sent is what SegmentSent heard, in order.
func (b *Backend) Sent() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

// Storage is the real store behind Store.
func (b *Backend) Storage() *storage.Store { return b.store }

// Record writes a finished recording sealed to rcpt whose segments hold
// the given plaintexts, and returns its index.
func Record(st *storage.Store, rcpt storage.Recipients, segments ...[]byte) (*storage.Index, error) {
	rec, err := st.Create(rcpt, storage.Manifest{Source: "test", Audio: "none"})
	if err != nil {
		return nil, err
	}
	for _, s := range segments {
		if _, err := rec.Write(s); err != nil {
			return nil, err
		}
		if err := rec.Flush(); err != nil {
			return nil, err
		}
	}
	if err := rec.Close(nil); err != nil {
		return nil, err
	}
	return st.Index(rec.ID())
}
