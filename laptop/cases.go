package laptop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// MinPrefix is the shortest id prefix FindCase and FindRecording accept.
const MinPrefix = 4

// MaxRetentionDays is the longest retention a case can be closed with.
const MaxRetentionDays = 3650

// CaseOptions describe a new case.
type CaseOptions struct {
	Label  string // the practitioner's name for it; stays on the laptop
	X25519 bool   // classic X25519 key instead of post-quantum hybrid
	// Passphrase protects the case key (age scrypt). It is required unless
	// NoPassphrase says the key is to be kept unprotected, in plain text
	// next to the vault (scripts, tests).
	Passphrase   string
	NoPassphrase bool
	Type         string // TypeFamily ("") or TypeSupervision
}

// ErrNoPassphrase refuses a new case with neither a passphrase nor the
// explicit choice of an unprotected key.
var ErrNoPassphrase = errors.New("new case: a passphrase is needed to protect the case key; give one, or choose an unprotected key explicitly")

// newCase makes the case opts describe, protected unless opts say not.
func (h *Home) newCase(opts CaseOptions) (*Case, error) {
	if opts.Passphrase == "" && !opts.NoPassphrase {
		return nil, ErrNoPassphrase
	}
	if opts.Passphrase != "" && opts.NoPassphrase {
		return nil, errors.New("new case: a passphrase and no passphrase at once; choose one")
	}
	switch opts.Type {
	case "", TypeFamily, TypeSupervision:
	default:
		return nil, fmt.Errorf("new case: no case type %q: use %s or %s", opts.Type, TypeFamily, TypeSupervision)
	}
	cs, err := h.NewCase(opts.Label, opts.X25519, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	if opts.Type == TypeSupervision {
		cs.Type = opts.Type
		if err := h.SaveCase(cs); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

// Pair pairs with the device at addr by the code it displays and opens a
// new case for it: the device seals what it records to that case from then
// on. If the pairing fails, the new case is removed again.
func (h *Home) Pair(ctx context.Context, dial link.Dialer, addr, code string, opts CaseOptions) (*Device, *Case, error) {
	_, pin, err := h.Cert()
	if err != nil {
		return nil, nil, err
	}
	cs, err := h.newCase(opts)
	if err != nil {
		return nil, nil, err
	}
	dp, err := link.Pair(ctx, dial, addr, code, link.LaptopPayload{LaptopCertPin: pin, Recipients: cs.Recipients, CaseRef: cs.ID})
	if err != nil {
		// The case never reached a device: remove it again.
		os.RemoveAll(h.caseDir(cs.ID))
		return nil, nil, err
	}
	now := time.Now()
	dev := &Device{ID: dp.DeviceID, Pin: dp.DevicePin, Addr: addr, Case: cs.ID, Paired: now.UTC()}
	if err := h.linkCase(cs, dev, now); err != nil {
		return nil, nil, err
	}
	return dev, cs, nil
}

// RecipientsAPI is what starting a case on a device needs of it
// (link.Client).
type RecipientsAPI interface {
	SetRecipients(ctx context.Context, recipients []string, caseRef string) error
}

var _ RecipientsAPI = (*link.Client)(nil)

// StartCase makes a new case and has the paired device dev record to it
// from now on. If the device does not take it, the case exists on this
// laptop only and the error says so.
func (h *Home) StartCase(ctx context.Context, api RecipientsAPI, dev *Device, opts CaseOptions) (*Case, error) {
	cs, err := h.newCase(opts)
	if err != nil {
		return nil, err
	}
	if err := api.SetRecipients(ctx, cs.Recipients, cs.ID); err != nil {
		return nil, fmt.Errorf("case new: the device did not take the new case (%w); case %s exists on this laptop only (attune case use %q records to it)", err, cs.ID, cs.Label)
	}
	if err := h.linkCase(cs, dev, time.Now()); err != nil {
		return nil, err
	}
	return cs, nil
}

// FindCase resolves a reference to a case: its id, its label (in any
// letter case), its number as the device shows it ("c042"), or a unique
// prefix of its id of at least MinPrefix characters.
func (h *Home) FindCase(ref string) (*Case, error) {
	if ref == "" {
		return nil, errors.New("give a case id or label (attune case list)")
	}
	cases, err := h.Cases()
	if err != nil {
		return nil, err
	}
	var labelled []*Case
	for _, cs := range cases {
		if cs.ID == ref {
			return cs, nil
		}
		if strings.EqualFold(cs.Label, strings.TrimSpace(ref)) || cs.Number() == strings.ToLower(ref) {
			labelled = append(labelled, cs)
		}
	}
	switch len(labelled) {
	case 0:
	case 1:
		return labelled[0], nil
	default:
		return nil, fmt.Errorf("several cases are labelled or numbered %q: use the case id", ref)
	}
	ids := make([]string, len(cases))
	for i, cs := range cases {
		ids[i] = cs.ID
	}
	i, err := resolvePrefix(ref, ids)
	switch {
	case errors.Is(err, errNoMatch):
		return nil, fmt.Errorf("no case %q (attune case list)", ref)
	case errors.Is(err, errTooShort):
		return nil, fmt.Errorf("no case %q: give its label, its id or at least %d characters of the id (attune case list)", ref, MinPrefix)
	case err != nil:
		return nil, fmt.Errorf("case %v", err)
	}
	return cases[i], nil
}

var (
	errNoMatch  = errors.New("no match")
	errTooShort = errors.New("prefix too short")
)

// resolvePrefix finds the one id of ids that is ref or starts with it (in
// any case), as git accepts an abbreviated commit, and returns its index:
// errTooShort below MinPrefix characters, errNoMatch for none, and an error
// naming the candidates if several match.
func resolvePrefix(ref string, ids []string) (int, error) {
	ref = strings.ToLower(ref)
	for i, id := range ids {
		if id == ref {
			return i, nil
		}
	}
	if !isHex(ref) || len(ref) > 16 {
		return -1, errNoMatch
	}
	if len(ref) < MinPrefix {
		return -1, errTooShort
	}
	var match []int
	for i, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, i)
		}
	}
	switch len(match) {
	case 0:
		return -1, errNoMatch
	case 1:
		return match[0], nil
	}
	var names []string
	for _, i := range match {
		names = append(names, ids[i])
	}
	sort.Strings(names)
	return -1, fmt.Errorf("prefix %q is ambiguous: it starts %s; give more of the id", ref, strings.Join(names, ", "))
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// ResetAPI is what closing a case needs of its device (link.Client).
type ResetAPI interface {
	LifecycleAPI
	ClearAPI
	Recordings(ctx context.Context) ([]*storage.Index, error)
	Reset(ctx context.Context, force bool) ([]byte, error)
	Close()
}

var _ ResetAPI = (*link.Client)(nil)

// CloseOptions say how to close a case.
type CloseOptions struct {
	// RetentionDays is how long the case's footage is kept after closing
	// before it is crypto-erased, 0 to MaxRetentionDays; 0 erases it at the
	// next run of attune.
	RetentionDays int
	// Force resets the device even though it holds footage of the case that
	// was never synced: it is erased unsynced, and the certificate says so.
	Force bool
	// Addr, if set, is where to reach the case's device instead of the
	// address it was paired at.
	Addr string
	// Now is the time of closing; zero means time.Now.
	Now time.Time
}

// CloseResult is what closing a case did.
type CloseResult struct {
	// Device is the device that was reset, or told that the case is
	// closed; nil if no paired device records to the case.
	Device *Device
	// Cleared says the device was not reset, because other open cases
	// record to it: it was told that this case is closed, and shows "no
	// case" until one is chosen (attune case use).
	Cleared bool
	// CertificateFile is the name the device's erasure certificate is kept
	// under with the case.
	CertificateFile string
	// Recordings, Segments and Unsynced count what the certificate says
	// the device erased: recordings, their segments, and of those the ones
	// never synced.
	Recordings, Segments, Unsynced int
	// CustodyErr is why the device's chain of custody could not be pulled
	// before the reset; the close went on without it.
	CustodyErr error
	// EraseDue is when the case's footage will be crypto-erased.
	EraseDue time.Time
}

// CloseCase closes a case. If a paired device records to it, connect
// reaches that device and its chain of custody is pulled. If no other open
// case has used the device, it is factory-reset (refused while it holds
// footage never synced, unless opts.Force), its erasure certificate is
// verified against the pin learnt at pairing and kept with the case, and
// the device is forgotten. If other open cases use it, the device is not
// reset but told that the case is closed (refused while it holds footage of
// this case never synced, unless opts.Force, which leaves that footage to
// a later sync): it stays paired, shows "no case" and records nothing
// until a case is chosen. Then the case is marked closed, to be
// crypto-erased opts.RetentionDays later, in the case and its laptop
// chain.
func (h *Home) CloseCase(ctx context.Context, c *Case, connect func(*Device) (ResetAPI, error), opts CloseOptions) (CloseResult, error) {
	var res CloseResult
	if opts.RetentionDays < 0 || opts.RetentionDays > MaxRetentionDays {
		return res, fmt.Errorf("case close: retention of %d days: give 0 to %d", opts.RetentionDays, MaxRetentionDays)
	}
	if c.Closed != nil {
		return res, fmt.Errorf("case close: case %s was already closed on %s", c.ID, c.Closed.Local().Format("2006-01-02"))
	}
	devs, err := h.Devices()
	if err != nil {
		return res, err
	}
	for _, d := range devs {
		if d.Case == c.ID {
			res.Device = d
		}
	}
	if res.Device != nil {
		if opts.Addr != "" {
			res.Device.Addr = opts.Addr
		}
		api, err := connect(res.Device)
		if err != nil {
			return res, err
		}
		if h.sharedDevice(c, res.Device) {
			err = h.clearDevice(ctx, api, c, res.Device, opts.Force, &res)
		} else {
			err = h.resetDevice(ctx, api, c, res.Device, opts.Force, &res)
		}
		api.Close()
		if err != nil {
			return res, err
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	days := opts.RetentionDays
	c.Closed, c.RetentionDays = &now, &days
	if err := h.SaveCase(c); err != nil {
		return res, err
	}
	if err := h.noteCase(c, custody.Record{Event: custody.EventCaseClosed, Count: days}, now); err != nil {
		return res, err
	}
	res.EraseDue, _ = c.EraseDue()
	return res, nil
}

// sharedDevice reports whether an open case other than c has recorded
// with dev.
func (h *Home) sharedDevice(c *Case, dev *Device) bool {
	cases, err := h.Cases()
	if err != nil {
		return false
	}
	for _, o := range cases {
		if o.ID != c.ID && o.Closed == nil && o.Erased == nil && (o.Device == dev.ID || slices.Contains(o.DevicePins, dev.Pin)) {
			return true
		}
	}
	return false
}

// UnsyncedError is CloseCase's refusal: the device holds footage of the
// case that was never synced (sync first, or close with Force).
type UnsyncedError struct {
	IDs []string // the recordings
	// Erases says that closing with Force would erase the footage (the
	// device is reset); else it stays on the device for a later sync.
	Erases bool
	msg    string
}

func (e *UnsyncedError) Error() string { return e.msg }

// clearDevice tells a device other cases use that c is closed.
func (h *Home) clearDevice(ctx context.Context, api ResetAPI, c *Case, dev *Device, force bool, res *CloseResult) error {
	if _, err := h.PullCustody(ctx, api, dev); err != nil {
		res.CustodyErr = err
	}
	if !force {
		recs, err := api.Recordings(ctx)
		if err != nil {
			return fmt.Errorf("case close: %w", err)
		}
		var ids []string
		for _, ix := range recs {
			if h.caseOf(ix, dev) != c.ID {
				continue
			}
			for _, s := range ix.Segments {
				if !s.Acked {
					ids = append(ids, ix.ID)
					break
				}
			}
		}
		if len(ids) > 0 {
			return &UnsyncedError{IDs: ids, msg: fmt.Sprintf("case close: the device still holds footage of this case that was never synced (%s): run attune sync first, or close with --force (the footage stays on the device for a later sync)", strings.Join(ids, ", "))}
		}
	}
	if err := api.ClearRecipients(ctx); err != nil {
		return fmt.Errorf("case close: the device was not told that the case is closed: %w", err)
	}
	dev.Case = ""
	if err := h.SaveDevice(dev); err != nil {
		return err
	}
	res.Cleared = true
	// The device's record of the clear, into the case's copy.
	if _, err := h.PullCustody(ctx, api, dev); err != nil && res.CustodyErr == nil {
		res.CustodyErr = err
	}
	return nil
}

// resetDevice factory-resets the case's device, verifies the erasure
// certificate against the pin learnt at pairing, and keeps it with the case.
func (h *Home) resetDevice(ctx context.Context, api ResetAPI, c *Case, dev *Device, force bool, res *CloseResult) error {
	// The chain of custody up to the reset.
	if _, err := h.PullCustody(ctx, api, dev); err != nil {
		res.CustodyErr = err
	}
	signed, err := api.Reset(ctx, force)
	if errors.Is(err, link.ErrUnsynced) {
		var ids []string
		if recs, lerr := api.Recordings(ctx); lerr == nil {
			for _, ix := range recs {
				for _, s := range ix.Segments {
					if !s.Acked {
						ids = append(ids, ix.ID)
						break
					}
				}
			}
		}
		return &UnsyncedError{IDs: ids, Erases: true, msg: fmt.Sprintf("case close: the device still holds footage that was never synced (%s): run attune sync first, or close with --force to erase it unsynced", strings.Join(ids, ", "))}
	}
	if err != nil {
		return fmt.Errorf("case close: %w", err)
	}
	if !slices.Contains(c.DevicePins, dev.Pin) {
		c.DevicePins = append(c.DevicePins, dev.Pin)
	}
	cert, verr := custody.VerifyCertificatePin(signed, dev.Pin)
	pin := dev.Pin
	if verr != nil {
		pin = ""
	}
	name, err := h.SaveCertificate(c, signed, pin)
	if err != nil {
		return err
	}
	res.CertificateFile = name
	if verr != nil {
		return fmt.Errorf("case close: the device was reset but its erasure certificate does not verify against the paired key (%v); kept as %s", verr, name)
	}
	if err := h.RemoveDevice(dev.ID); err != nil {
		return err
	}
	res.Recordings = len(cert.Recordings)
	for _, r := range cert.Recordings {
		for _, s := range r.Segments {
			res.Segments++
			if !s.Synced {
				res.Unsynced++
			}
		}
	}
	return nil
}
