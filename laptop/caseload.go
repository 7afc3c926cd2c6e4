package laptop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// Case types (Case.Type).
const (
	// TypeFamily is a piece of work with a family (the default).
	TypeFamily = "family"
	// TypeSupervision holds the practitioner's films of their own shared
	// reviews, for supervision (video-enhanced reflective practice). Its
	// exports are marked as supervision material.
	TypeSupervision = "supervision"
)

// Consent scopes, from VIG consent forms. Each export is made for one
// purpose, and needs the scope of that name (see Case.Permits):
//
//	filming        the visits may be filmed (case use refuses a case without it once withdrawn)
//	shared_review  clips shown back to the family in the shared review: attune export's default
//	family_copy    a copy of a clip given to the family (attune export --for family_copy)
//	supervision    clips used in the practitioner's supervision (the only purpose of a supervision case)
//	training       clips used for training or research
const (
	ScopeFilming      = "filming"
	ScopeSharedReview = "shared_review"
	ScopeFamilyCopy   = "family_copy"
	ScopeSupervision  = "supervision"
	ScopeTraining     = "training"
)

// Scopes are the consent scopes, in the order consent forms list them.
var Scopes = []string{ScopeFilming, ScopeSharedReview, ScopeFamilyCopy, ScopeSupervision, ScopeTraining}

// Withdrawal is consent withdrawn for one scope.
type Withdrawal struct {
	Scope    string    `json:"scope"`
	Date     string    `json:"date"` // when it was withdrawn, YYYY-MM-DD
	Who      string    `json:"who"`
	Recorded time.Time `json:"recorded"`
}

// field is the consent entry's flag for scope, or nil for no such scope.
func (c *Consent) field(scope string) *bool {
	switch scope {
	case ScopeFilming:
		return &c.Filming
	case ScopeSharedReview:
		return &c.SharedReview
	case ScopeFamilyCopy:
		return &c.ClipsToFamily
	case ScopeSupervision:
		return &c.Supervision
	case ScopeTraining:
		return &c.Training
	}
	return nil
}

// Grants reports whether a consent entry grants scope.
func (c Consent) Grants(scope string) bool {
	f := c.field(scope)
	return f != nil && *f
}

// Grant adds scope to a consent entry; an unknown scope is an error.
func (c *Consent) Grant(scope string) error {
	f := c.field(scope)
	if f == nil {
		return fmt.Errorf("consent: no scope %q", scope)
	}
	*f = true
	return nil
}

// Number is the case's short number, as the device shows it ("c042").
func (c *Case) Number() string { return custody.CaseNumber(c.ID) }

// IsSupervision reports whether the case holds supervision material.
func (c *Case) IsSupervision() bool { return c.Type == TypeSupervision }

// Withdrawn is the withdrawal in force for scope: one recorded after the
// latest consent entry, or nil.
func (c *Case) Withdrawn(scope string) *Withdrawal {
	var since time.Time
	if n := len(c.Consent); n > 0 {
		since = c.Consent[n-1].Recorded
	}
	for i := len(c.Withdrawals) - 1; i >= 0; i-- {
		w := &c.Withdrawals[i]
		if w.Scope == scope && !w.Recorded.Before(since) {
			return w
		}
	}
	return nil
}

// Permits says whether the case's consent allows scope: the latest consent
// entry (an amendment replaces the entries before it) must grant it and
// it must not have been withdrawn since. A case with no consent recorded
// permits everything but supervision (and a supervision case everything):
// consent recorded on paper before attune kept it is not lost by upgrading.
func (c *Case) Permits(scope string) error {
	if !slices.Contains(Scopes, scope) {
		return fmt.Errorf("no consent scope %q: use one of %s", scope, strings.Join(Scopes, ", "))
	}
	if w := c.Withdrawn(scope); w != nil {
		return fmt.Errorf("consent for %s was withdrawn on %s (by %s)", scope, w.Date, w.Who)
	}
	if len(c.Consent) == 0 {
		return nil
	}
	if !c.Consent[len(c.Consent)-1].Grants(scope) {
		return fmt.Errorf("the consent recorded on %s does not cover %s (attune case consent show)", c.Consent[len(c.Consent)-1].Date, scope)
	}
	return nil
}

// consentDate checks a consent or withdrawal date: YYYY-MM-DD, not after
// today (in now's zone).
func consentDate(date string, now time.Time) error {
	d, err := time.ParseInLocation("2006-01-02", date, now.Location())
	if err != nil {
		return fmt.Errorf("date %q: want YYYY-MM-DD", date)
	}
	y, m, dd := now.Date()
	if d.After(time.Date(y, m, dd, 0, 0, 0, 0, now.Location())) {
		return fmt.Errorf("date %s is in the future: record consent when it is given", date)
	}
	return nil
}

// GiveConsent records consent given, or amended (a new entry replaces the
// ones before it), in the case and in its laptop chain.
func (h *Home) GiveConsent(c *Case, cn Consent, now time.Time) error {
	if strings.TrimSpace(cn.Who) == "" {
		return errors.New("consent: say who consented")
	}
	if err := consentDate(cn.Date, now); err != nil {
		return fmt.Errorf("consent: %v", err)
	}
	if cn.RetentionDays != nil && (*cn.RetentionDays < 0 || *cn.RetentionDays > MaxRetentionDays) {
		return fmt.Errorf("consent: retention of %d days: give 0 to %d", *cn.RetentionDays, MaxRetentionDays)
	}
	if c.Erased != nil {
		return fmt.Errorf("consent: case %s was erased", c.Label)
	}
	cn.Recorded = now.UTC()
	c.Consent = append(c.Consent, cn)
	if err := h.SaveCase(c); err != nil {
		return err
	}
	return h.noteCase(c, custody.Record{Event: custody.EventConsentGiven, Count: len(c.Consent), SHA256: jsonDigest(cn)}, now)
}

// WithdrawConsent records consent withdrawn for scope on date.
func (h *Home) WithdrawConsent(c *Case, scope, who, date string, now time.Time) error {
	if !slices.Contains(Scopes, scope) {
		return fmt.Errorf("consent withdraw: no scope %q: use one of %s", scope, strings.Join(Scopes, ", "))
	}
	if strings.TrimSpace(who) == "" {
		return errors.New("consent withdraw: say who withdrew consent")
	}
	if err := consentDate(date, now); err != nil {
		return fmt.Errorf("consent withdraw: %v", err)
	}
	w := Withdrawal{Scope: scope, Date: date, Who: who, Recorded: now.UTC()}
	c.Withdrawals = append(c.Withdrawals, w)
	if err := h.SaveCase(c); err != nil {
		return err
	}
	return h.noteCase(c, custody.Record{Event: custody.EventConsentWithdrawn, Detail: scope, Count: len(c.Withdrawals), SHA256: jsonDigest(w)}, now)
}

func jsonDigest(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// LaptopChainFile is the name, in a case's directory, of the laptop's own
// audit chain for the case: what happened to it on the laptop, in the
// device's line format (custody.Record).
const LaptopChainFile = "laptop.log"

// noteCase appends r to the case's laptop chain.
func (h *Home) noteCase(c *Case, r custody.Record, now time.Time) error {
	path := filepath.Join(h.caseDir(c.ID), LaptopChainFile)
	kept, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("case chain: %v", err)
	}
	recs, err := custody.VerifyChain(kept)
	if err != nil {
		return fmt.Errorf("case chain: %s is damaged: %w", path, err)
	}
	prev := custody.ZeroHash
	if ls := chainLines(kept); len(ls) > 0 {
		prev = custody.LineHash(ls[len(ls)-1])
	}
	_, line, err := custody.Seal(r, uint64(len(recs))+1, prev, 0, now, true)
	if err != nil {
		return fmt.Errorf("case chain: %v", err)
	}
	b := append(append(kept, line...), '\n')
	if err := storage.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("case chain: %v", err)
	}
	return nil
}

// LaptopChain reads and verifies the case's laptop chain.
func (h *Home) LaptopChain(c *Case) ([]custody.Record, error) {
	raw, err := os.ReadFile(filepath.Join(h.caseDir(c.ID), LaptopChainFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("case chain: %v", err)
	}
	return custody.VerifyChain(raw)
}

// ExportRecord is a plaintext copy of a recording, or of part of one, that
// attune wrote: the case keeps a list of them, because erasing the case
// key does not reach them. attune export writes whole recordings; the
// review workspace's family copy writes clips and pictures, one record a
// file, with What saying which part. Path is kept as the practitioner
// typed it (made absolute): a folder named after the family keeps its
// name here, inside the case's own directory, where the family's label
// is anyway.
type ExportRecord struct {
	When      time.Time `json:"when"`
	Recording string    `json:"recording"`
	Purpose   string    `json:"purpose"`        // the consent scope it was made for
	What      string    `json:"what,omitempty"` // the part of the recording, e.g. "clip 00:01.000–00:02.000 (frames 30–59)"; "" is the whole recording
	Path      string    `json:"path"`           // where it was written (absolute)
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"` // of the file as written
}

// NewExportRecord describes a plaintext file written at path from
// recording, for purpose, hashing it as it is on disk.
func NewExportRecord(recording, purpose, what, path string, now time.Time) (ExportRecord, error) {
	d, err := FileDigest(path)
	if err != nil {
		return ExportRecord{}, fmt.Errorf("record the export: %v", err)
	}
	return ExportRecordOf(recording, purpose, what, path, d, now), nil
}

// Digest is a file's size and SHA-256 (hex), as an export record keeps
// them.
type Digest struct {
	Bytes  int64
	SHA256 string
}

// DigestOf is the digest of a file holding b.
func DigestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest{Bytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

// ExportRecordOf is NewExportRecord for a file whose digest was taken as
// it was written.
func ExportRecordOf(recording, purpose, what, path string, d Digest, now time.Time) ExportRecord {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return ExportRecord{When: now.UTC(), Recording: recording, Purpose: purpose, What: what, Path: abs, Bytes: d.Bytes, SHA256: d.SHA256}
}

const exportsFile = "exports.json"

// Exports are the plaintext exports of the case that attune wrote.
func (h *Home) Exports(c *Case) ([]ExportRecord, error) {
	raw, err := os.ReadFile(filepath.Join(h.caseDir(c.ID), exportsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exports: %v", err)
	}
	var out []ExportRecord
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("exports: %s damaged: %v", exportsFile, err)
	}
	return out, nil
}

// RecordExports adds plaintext exports to the case's list (Exports) and
// its laptop chain, one exported record each: case close and erase list
// them, attune audit shows them. This is the one record of the plaintext
// copies attune writes.
func (h *Home) RecordExports(c *Case, es []ExportRecord, now time.Time) error {
	list, err := h.Exports(c)
	if err != nil {
		return err
	}
	list = append(list, es...)
	b, _ := json.MarshalIndent(list, "", "  ")
	if err := h.SaveCaseFile(c, exportsFile, b); err != nil {
		return err
	}
	for _, e := range es {
		if err := h.noteCase(c, custody.Record{Event: custody.EventExported, Recording: e.Recording, Detail: e.Purpose, Bytes: e.Bytes, SHA256: e.SHA256}, now); err != nil {
			return err
		}
	}
	return nil
}

// ExportPurpose checks that case c may be exported for purpose (a consent
// scope; "" means shared_review, or supervision for a supervision case)
// and returns the purpose resolved. It refuses what the case's consent
// does not permit, anything but supervision from a supervision case, and
// filming (not a purpose to export for).
func (c *Case) ExportPurpose(purpose string) (string, error) {
	if purpose == "" {
		purpose = ScopeSharedReview
		if c.IsSupervision() {
			purpose = ScopeSupervision
		}
	}
	if c.IsSupervision() && purpose != ScopeSupervision {
		return purpose, fmt.Errorf("export: case %s holds supervision material: export it for supervision only", c.Label)
	}
	if purpose == ScopeFilming {
		return purpose, errors.New("export: filming is not a purpose to export for: use shared_review, family_copy, supervision or training")
	}
	if err := c.Permits(purpose); err != nil {
		return purpose, fmt.Errorf("export refused: case %s: %v", c.Label, err)
	}
	return purpose, nil
}

// ExportFor exports a vault recording of case c for purpose (a consent
// scope; "" means shared_review, or supervision for a supervision case),
// refusing what the case's consent does not permit. A supervision case's
// exports are marked as such: in the Matroska title and in the file name
// (".supervision" before the extension, added if missing). The export is
// recorded with the case (Exports) and in its laptop chain. It returns the
// path written.
func (h *Home) ExportFor(ctx context.Context, c *Case, vr VaultRecording, id age.Identity, path, purpose string, now time.Time, allowGaps bool) (string, ExportInfo, *storage.Manifest, error) {
	purpose, perr := c.ExportPurpose(purpose)
	if perr != nil {
		return path, ExportInfo{}, nil, perr
	}
	title := ""
	if c.IsSupervision() {
		title = "Supervision material (video-enhanced reflective practice): not for the family record"
		ext := filepath.Ext(path)
		if !strings.Contains(strings.ToLower(filepath.Base(path)), "supervision") {
			path = strings.TrimSuffix(path, ext) + ".supervision" + ext
		}
	} else if purpose == ScopeFamilyCopy {
		title = "Family copy"
	}
	info, m, err := h.exportRecording(ctx, vr, id, path, title, allowGaps)
	if err != nil && !errors.Is(err, ErrDamaged) {
		return path, info, m, err
	}
	e, rerr := NewExportRecord(vr.ID, purpose, "", path, now)
	if rerr != nil {
		return path, info, m, rerr
	}
	if rerr := h.RecordExports(c, []ExportRecord{e}, now); rerr != nil {
		return path, info, m, rerr
	}
	return path, info, m, err
}

// FileDigest is the digest of the file at path, read through in large
// blocks.
func FileDigest(path string) (Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, 1<<20)) // the struct hides os.File's WriteTo, which would copy in 32 KiB reads
	return Digest{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// ClearAPI is what closing a case on a device that other cases use
// needs (link.Client).
type ClearAPI interface {
	ClearRecipients(ctx context.Context) error
}

var _ ClearAPI = (*link.Client)(nil)

// UseCase makes dev record to case c from now on. A closed or erased case,
// or one whose consent to filming was withdrawn, is refused.
func (h *Home) UseCase(ctx context.Context, api RecipientsAPI, dev *Device, c *Case, now time.Time) error {
	switch {
	case c.Erased != nil:
		return fmt.Errorf("case use: case %s was erased", c.Label)
	case c.Closed != nil:
		return fmt.Errorf("case use: case %s was closed on %s: a closed case is never recorded to again", c.Label, c.Closed.Local().Format("2006-01-02"))
	}
	if w := c.Withdrawn(ScopeFilming); w != nil {
		return fmt.Errorf("case use: consent to filming for case %s was withdrawn on %s", c.Label, w.Date)
	}
	if err := api.SetRecipients(ctx, c.Recipients, c.ID); err != nil {
		return fmt.Errorf("case use: the device did not take case %s: %w", c.Label, err)
	}
	return h.linkCase(c, dev, now)
}

// linkCase records that dev records to c from now on: with the device, in
// the case (with the device's pin, kept to verify its certificates
// whatever becomes of the device) and in the case's laptop chain.
func (h *Home) linkCase(c *Case, dev *Device, now time.Time) error {
	dev.Case, c.Device = c.ID, dev.ID
	if dev.Pin != "" && !slices.Contains(c.DevicePins, dev.Pin) {
		c.DevicePins = append(c.DevicePins, dev.Pin)
	}
	if err := h.SaveCase(c); err != nil {
		return err
	}
	if err := h.SaveDevice(dev); err != nil {
		return err
	}
	return h.noteCase(c, custody.Record{Event: custody.EventCaseUsed, SHA256: dev.Pin}, now)
}

// checkLabel refuses a label another case has already (in any letter
// case): labels name cases everywhere, so they must be unique.
func (h *Home) checkLabel(label string) error {
	cases, err := h.Cases()
	if err != nil {
		return err
	}
	for _, c := range cases {
		if strings.EqualFold(c.Label, label) {
			return fmt.Errorf("new case: a case labelled %q exists already (%s, %s): choose another label, or record to it with attune case use", c.Label, c.Number(), c.ID)
		}
	}
	return nil
}

// newCaseID is a fresh case id whose number (Case.Number) no open case
// has, so that the device's display tells the open cases apart.
func (h *Home) newCaseID() string {
	cases, _ := h.Cases()
	used := map[string]bool{}
	for _, c := range cases {
		if c.Closed == nil && c.Erased == nil {
			used[c.Number()] = true
		}
	}
	for i := 0; ; i++ {
		id := newID()
		if !used[custody.CaseNumber(id)] || i > 100 {
			return id
		}
	}
}

// EraseBlocked says why c cannot be erased now: a paired device records
// to it (close it first, so the device stops recording to it).
func (h *Home) EraseBlocked(c *Case) error {
	devs, err := h.devicesOf(c)
	if err != nil {
		return err
	}
	if len(devs) > 0 {
		return fmt.Errorf("erase case %s: device %s records to it: close the case first (attune case close %q), so that the device stops recording to it", c.Label, devs[0].ID, c.Label)
	}
	return nil
}

// devicesOf are the paired devices that record to c.
func (h *Home) devicesOf(c *Case) ([]*Device, error) {
	devs, err := h.Devices()
	if err != nil {
		return nil, err
	}
	var out []*Device
	for _, d := range devs {
		if d.Case == c.ID {
			out = append(out, d)
		}
	}
	return out, nil
}

// Settings are the service's settings, kept in HOME/settings.json.
type Settings struct {
	// RetentionDays is how long a closed case's footage is kept before it
	// is crypto-erased, unless close is given another period; nil means
	// DefaultRetentionDays.
	RetentionDays *int `json:"retention_days,omitempty"`
}

const settingsFile = "settings.json"

// Settings reads the service's settings.
func (h *Home) Settings() (Settings, error) {
	var s Settings
	raw, err := os.ReadFile(filepath.Join(h.Dir, settingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: %v", err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("settings: %s damaged: %v", settingsFile, err)
	}
	return s, nil
}

// SaveSettings writes the service's settings.
func (h *Home) SaveSettings(s Settings) error {
	if s.RetentionDays != nil && (*s.RetentionDays < 0 || *s.RetentionDays > MaxRetentionDays) {
		return fmt.Errorf("settings: retention of %d days: give 0 to %d", *s.RetentionDays, MaxRetentionDays)
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return storage.WriteFileAtomic(filepath.Join(h.Dir, settingsFile), b, 0o600)
}

// RetentionDays is the service's retention period after close.
func (h *Home) RetentionDays() int {
	if s, err := h.Settings(); err == nil && s.RetentionDays != nil {
		return *s.RetentionDays
	}
	return DefaultRetentionDays
}

// Due are the closed cases whose erasure falls within the next within,
// soonest first.
func (h *Home) Due(now time.Time, within time.Duration) ([]*Case, error) {
	cases, err := h.Cases()
	if err != nil {
		return nil, err
	}
	var out []*Case
	for _, c := range cases {
		if due, ok := c.EraseDue(); ok && due.Before(now.Add(within)) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *Case) int {
		da, _ := a.EraseDue()
		db, _ := b.EraseDue()
		return da.Compare(db)
	})
	return out, nil
}
