package laptop

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"

	"attune.dev/attune/custody"
	"attune.dev/attune/link"
	"attune.dev/attune/storage"
)

// Home is the practitioner's Attune directory on the laptop:
//
//	HOME/laptop.key                  the laptop's TLS key (0600)
//	HOME/devices/<device-id>.json    a paired device: its pin, address, current case
//	HOME/cases/<case-id>/case.json   a case: label, dates, recipients
//	HOME/cases/<case-id>/identity    the case's age identity (0600; passphrase-protected unless made without)
//	HOME/vault/<case-id>/<rec-id>/   synced recordings, still encrypted: the evidential master
type Home struct {
	Dir string

	mu  sync.Mutex
	ids map[string]age.Identity // case identities unlocked in this process
}

// The names of the home directory's layout (see Home).
const (
	laptopKeyName = "laptop.key"
	devicesDir    = "devices"
	casesDir      = "cases"
	vaultDir      = "vault"
	caseFileName  = "case.json"
	identityName  = "identity"
)

// DefaultHome is $ATTUNE_HOME, else the user's data directory on this
// operating system (see homeFor).
func DefaultHome() (string, error) { return homeFor(runtime.GOOS, os.Getenv) }

// homeFor is the default home directory on the operating system goos with
// the environment getenv: $ATTUNE_HOME if set, else
//
//	windows  %LOCALAPPDATA%\Attune (%USERPROFILE%\AppData\Local\Attune without it)
//	darwin   $HOME/Library/Application Support/Attune
//	others   $XDG_DATA_HOME/attune, else $HOME/.local/share/attune
func homeFor(goos string, getenv func(string) string) (string, error) {
	if d := getenv("ATTUNE_HOME"); d != "" {
		return d, nil
	}
	switch goos {
	case "windows":
		if d := getenv("LOCALAPPDATA"); d != "" {
			return joinFor(goos, d, "Attune"), nil
		}
		if d := getenv("USERPROFILE"); d != "" {
			return joinFor(goos, d, "AppData", "Local", "Attune"), nil
		}
		return "", errors.New("home: neither %LOCALAPPDATA% nor %USERPROFILE% is set; set ATTUNE_HOME or give --home DIR")
	case "darwin", "ios":
		if d := getenv("HOME"); d != "" {
			return joinFor(goos, d, "Library", "Application Support", "Attune"), nil
		}
	default:
		if d := getenv("XDG_DATA_HOME"); d != "" {
			return joinFor(goos, d, "attune"), nil
		}
		if d := getenv("HOME"); d != "" {
			return joinFor(goos, d, ".local", "share", "attune"), nil
		}
	}
	return "", errors.New("home: $HOME is not set; set ATTUNE_HOME or give --home DIR")
}

// joinFor joins path elements with goos's separator, whatever this program
// runs on (so homeFor's choices are testable anywhere).
func joinFor(goos, base string, elem ...string) string {
	if goos == "windows" {
		return strings.TrimRight(base, `\/`) + `\` + strings.Join(elem, `\`)
	}
	return path.Join(append([]string{base}, elem...)...)
}

// OpenHome opens (creating, mode 0700) the home directory dir; "" means
// DefaultHome.
func OpenHome(dir string) (*Home, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultHome(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, devicesDir), filepath.Join(dir, casesDir), filepath.Join(dir, vaultDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("home: %v", err)
		}
	}
	return &Home{Dir: dir}, nil
}

// Cert returns the laptop's TLS certificate (made on first use) and its pin.
func (h *Home) Cert() (tls.Certificate, string, error) {
	key, err := link.LoadOrCreateKey(filepath.Join(h.Dir, laptopKeyName))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("laptop key: %v", err)
	}
	cert, err := link.SelfSignedCert(key, "attune-laptop")
	if err != nil {
		return tls.Certificate{}, "", err
	}
	pin, err := link.CertPin(cert)
	return cert, pin, err
}

// Case is one piece of work with a family: its own age identity, so that
// deleting the identity erases every copy of its footage at once.
type Case struct {
	ID         string    `json:"id"`
	Label      string    `json:"label"` // the practitioner's name for it; stays on the laptop
	Created    time.Time `json:"created"`
	Kind       string    `json:"recipient_kind"` // storage.KindHybrid or storage.KindX25519
	Recipients []string  `json:"recipients"`
	Protected  bool      `json:"protected"` // identity encrypted with a passphrase
	Device     string    `json:"device,omitempty"`
	// Type is TypeFamily ("" in older files) or TypeSupervision.
	Type string `json:"type,omitempty"`
	// DevicePins are the key pins of the devices that recorded to the
	// case, kept to verify their erasure certificates even after the
	// laptop forgot the device.
	DevicePins []string `json:"device_pins,omitempty"`
	// Consent are the consent entries, oldest first; the latest is in
	// force (an amendment is a new entry).
	Consent []Consent `json:"consent,omitempty"`
	// Withdrawals are consent withdrawn, per scope, oldest first.
	Withdrawals []Withdrawal `json:"withdrawals,omitempty"`
	// Closed is when the case was closed; its footage is crypto-erased
	// RetentionDays after that (0: at the next run of attune; unset:
	// DefaultRetentionDays).
	Closed        *time.Time `json:"closed,omitempty"`
	RetentionDays *int       `json:"retention_days,omitempty"`
	// Erased is when the case key was destroyed: from then on no copy of
	// the case's footage, anywhere, can be decrypted.
	Erased *time.Time `json:"erased,omitempty"`
}

// Consent records what a family agreed to.
type Consent struct {
	Recorded      time.Time `json:"recorded"`
	Date          string    `json:"date"` // when consent was given, YYYY-MM-DD
	Who           string    `json:"who"`
	Filming       bool      `json:"filming"`
	SharedReview  bool      `json:"shared_review"`
	Supervision   bool      `json:"supervision"`
	ClipsToFamily bool      `json:"clips_to_family"` // the family_copy scope
	Training      bool      `json:"training"`        // training and research
	// RetentionDays is the retention after close the family agreed to;
	// nil: the service's.
	RetentionDays *int   `json:"retention_days,omitempty"`
	Note          string `json:"note,omitempty"`
}

// DefaultRetentionDays is how long a closed case's footage is kept (VIG
// consent forms typically promise erasure within two months of case close).
const DefaultRetentionDays = 60

// EraseDue is when a closed case's footage will be erased.
func (c *Case) EraseDue() (time.Time, bool) {
	if c.Closed == nil || c.Erased != nil {
		return time.Time{}, false
	}
	days := DefaultRetentionDays
	if c.RetentionDays != nil {
		// Negative: written as "no retention" by attune before
		// RetentionDays was optional.
		days = max(*c.RetentionDays, 0)
	}
	return c.Closed.AddDate(0, 0, days), true
}

// Erase crypto-erases a case: it destroys the case identity here (and in
// this process's memory), which makes every encrypted copy of its footage
// — on the device, in the vault, in backups of the vault — undecryptable
// unless a copy of the identity survives elsewhere (a backup of the home:
// passphrase-protected unless the case was made without), then deletes
// the vault's ciphertext too. It does not reach plaintext exports (Exports
// lists those attune made). It refuses an open case a paired device
// records to: close it first, so the device never records to a destroyed
// key. It returns how many vault files it removed.
func (h *Home) Erase(c *Case, now time.Time) (int, error) {
	return h.erase(c, now, "practitioner")
}

func (h *Home) erase(c *Case, now time.Time, by string) (int, error) {
	if c.Erased != nil {
		return 0, nil
	}
	if err := h.EraseBlocked(c); err != nil {
		return 0, err
	}
	h.mu.Lock()
	delete(h.ids, c.ID) // not even this process can decrypt from now on
	h.mu.Unlock()
	idPath := filepath.Join(h.caseDir(c.ID), identityName)
	if err := os.Remove(idPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("erase case %s: %v", c.ID, err)
	}
	if err := storage.SyncDir(h.caseDir(c.ID)); err != nil {
		return 0, fmt.Errorf("erase case %s: %v", c.ID, err)
	}
	n := 0
	vault := filepath.Join(h.Dir, vaultDir, c.ID)
	filepath.WalkDir(vault, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if err := os.RemoveAll(vault); err != nil {
		return n, fmt.Errorf("erase case %s: key destroyed, but the vault copy could not be removed: %v", c.ID, err)
	}
	t := now.UTC()
	c.Erased = &t
	if err := h.SaveCase(c); err != nil {
		return n, err
	}
	return n, h.noteCase(c, custody.Record{Event: custody.EventCaseErased, Count: n, Detail: by}, now)
}

// EraseExpired erases every closed case past its retention period.
func (h *Home) EraseExpired(now time.Time) ([]*Case, error) {
	cases, err := h.Cases()
	if err != nil {
		return nil, err
	}
	var done []*Case
	for _, c := range cases {
		if due, ok := c.EraseDue(); ok && !now.Before(due) {
			if _, err := h.erase(c, now, "retention"); err != nil {
				return done, err
			}
			done = append(done, c)
		}
	}
	return done, nil
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Home) caseDir(id string) string { return filepath.Join(h.Dir, casesDir, id) }

// NewCase makes a case with a fresh identity: post-quantum hybrid unless
// x25519. With a passphrase the identity file is encrypted with age's
// scrypt recipient; without one it is written in plain text (Pair and
// StartCase refuse that unless asked for explicitly).
func (h *Home) NewCase(label string, x25519 bool, passphrase string) (*Case, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return nil, errors.New("new case: give the case a label (it stays on this laptop)")
	}
	if err := h.checkLabel(label); err != nil {
		return nil, err
	}
	var idStr, rcpt, kind string
	if x25519 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return nil, err
		}
		idStr, rcpt, kind = id.String(), id.Recipient().String(), "x25519"
	} else {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, err
		}
		idStr, rcpt, kind = id.String(), id.Recipient().String(), "mlkem768x25519"
	}
	c := &Case{ID: h.newCaseID(), Label: label, Created: time.Now().UTC(), Kind: kind, Recipients: []string{rcpt}, Protected: passphrase != ""}
	dir := h.caseDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("new case: %v", err)
	}
	body := []byte(fmt.Sprintf("# attune case identity, created %s\n# public key: %s\n%s\n", c.Created.Format(time.RFC3339), rcpt, idStr))
	if passphrase != "" {
		r, err := age.NewScryptRecipient(passphrase)
		if err != nil {
			return nil, err
		}
		var buf strings.Builder
		aw := armor.NewWriter(&buf)
		w, err := age.Encrypt(aw, r)
		if err != nil {
			return nil, err
		}
		w.Write(body)
		w.Close()
		aw.Close()
		body = []byte(buf.String())
	}
	if err := storage.WriteFileAtomic(filepath.Join(dir, identityName), body, 0o600); err != nil {
		return nil, fmt.Errorf("new case: %v", err)
	}
	if err := h.SaveCase(c); err != nil {
		return nil, err
	}
	return c, nil
}

// SaveCase writes case.json.
func (h *Home) SaveCase(c *Case) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := storage.WriteFileAtomic(filepath.Join(h.caseDir(c.ID), caseFileName), b, 0o600); err != nil {
		return fmt.Errorf("save case: %v", err)
	}
	return nil
}

// Cases lists the cases, oldest first.
func (h *Home) Cases() ([]*Case, error) {
	ents, err := os.ReadDir(filepath.Join(h.Dir, casesDir))
	if err != nil {
		return nil, fmt.Errorf("cases: %v", err)
	}
	var out []*Case
	for _, e := range ents {
		if !custody.ValidID(e.Name()) {
			continue
		}
		c, err := h.Case(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Case reads one case.
func (h *Home) Case(id string) (*Case, error) {
	if !custody.ValidID(id) {
		return nil, fmt.Errorf("case %q: not a case id", id)
	}
	b, err := os.ReadFile(filepath.Join(h.caseDir(id), caseFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("case %s: no such case (attune case list)", id)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %v", id, err)
	}
	var c Case
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("case %s: case.json damaged: %v", id, err)
	}
	return &c, nil
}

// Identity loads a case's age identity; passphrase is asked for only if
// the identity is protected, and only the first time in this process: an
// unlocked identity stays in memory (until Erase).
func (h *Home) Identity(c *Case, passphrase func() (string, error)) (age.Identity, error) {
	h.mu.Lock()
	id, ok := h.ids[c.ID]
	h.mu.Unlock()
	if ok && c.Erased == nil {
		return id, nil
	}
	id, err := h.loadIdentity(c, passphrase)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.ids == nil {
		h.ids = map[string]age.Identity{}
	}
	h.ids[c.ID] = id
	h.mu.Unlock()
	return id, nil
}

func (h *Home) loadIdentity(c *Case, passphrase func() (string, error)) (age.Identity, error) {
	f, err := os.Open(filepath.Join(h.caseDir(c.ID), identityName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("case %s: its key has been erased; its footage can no longer be decrypted", c.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("case %s: %v", c.ID, err)
	}
	defer f.Close()
	var r io.Reader = f
	if c.Protected {
		if passphrase == nil {
			return nil, fmt.Errorf("case %s: its key is passphrase-protected; set ATTUNE_PASSPHRASE or ATTUNE_PASSPHRASE_FILE, or run on a terminal", c.ID)
		}
		pw, err := passphrase()
		if err != nil {
			return nil, err
		}
		id, err := age.NewScryptIdentity(pw)
		if err != nil {
			return nil, err
		}
		dr, err := age.Decrypt(armor.NewReader(f), id)
		if err != nil {
			return nil, fmt.Errorf("case %s: wrong passphrase? %v", c.ID, err)
		}
		r = dr
	}
	ids, err := age.ParseIdentities(r)
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("case %s: identity file damaged: %v", c.ID, err)
	}
	return ids[0], nil
}

// Device is a paired device as the laptop knows it.
type Device struct {
	ID     string    `json:"id"`
	Pin    string    `json:"pin"`
	Addr   string    `json:"addr"`
	Case   string    `json:"case"` // the case its new recordings belong to
	Paired time.Time `json:"paired"`
}

// SaveDevice writes devices/<id>.json.
func (h *Home) SaveDevice(d *Device) error {
	// The id came from the device: it names a file only if it has the form
	// a device gives its ids.
	if !custody.ValidID(d.ID) {
		return fmt.Errorf("save device: its id %q is not 16 lowercase hex digits; the device is not behaving as an Attune device: nothing was saved", d.ID)
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	if err := storage.WriteFileAtomic(filepath.Join(h.Dir, devicesDir, d.ID+".json"), b, 0o600); err != nil {
		return fmt.Errorf("save device: %v", err)
	}
	return nil
}

// Devices lists the paired devices, most recently paired first.
func (h *Home) Devices() ([]*Device, error) {
	ents, err := os.ReadDir(filepath.Join(h.Dir, devicesDir))
	if err != nil {
		return nil, fmt.Errorf("devices: %v", err)
	}
	var out []*Device
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.Dir, devicesDir, e.Name()))
		if err != nil {
			return nil, err
		}
		var d Device
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("devices: %s damaged: %v", e.Name(), err)
		}
		out = append(out, &d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Paired.After(out[j].Paired) })
	return out, nil
}

// SaveCaseFile keeps a document (an erasure certificate, an audit copy)
// with the case.
func (h *Home) SaveCaseFile(c *Case, name string, data []byte) error {
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("save %q: bad file name", name)
	}
	if err := storage.WriteFileAtomic(filepath.Join(h.caseDir(c.ID), name), data, 0o600); err != nil {
		return fmt.Errorf("save %s: %v", name, err)
	}
	return nil
}

// CaseFiles lists the case's documents whose names start with prefix.
func (h *Home) CaseFiles(c *Case, prefix string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(h.caseDir(c.ID), prefix+"*"))
	sort.Strings(m)
	return m, err
}

// RemoveDevice forgets a device (after it was reset).
func (h *Home) RemoveDevice(id string) error {
	if !custody.ValidID(id) {
		return fmt.Errorf("remove device: bad id %q", id)
	}
	err := os.Remove(filepath.Join(h.Dir, devicesDir, id+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
