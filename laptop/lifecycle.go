package laptop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"attune.dev/attune/custody"
)

// certFile is how the laptop keeps an erasure certificate: the signed
// document as the device sent it and the pin of the device key it was
// verified against ("" if no paired device's key verifies it).
type certFile struct {
	DevicePin string `json:"device_pin"`
	// Signed is the device's document byte for byte (base64 in JSON: any
	// reformatting would break the signature).
	Signed []byte `json:"signed"`
}

// SaveCertificate keeps a device's erasure certificate with the case,
// once (files are named by the certificate's digest).
func (h *Home) SaveCertificate(c *Case, signed []byte, pin string) (string, error) {
	name := "erasure-" + custody.CertificateDigest(signed)[:16] + ".json"
	if _, err := os.Stat(filepath.Join(h.caseDir(c.ID), name)); err == nil {
		return name, nil
	}
	b, err := json.MarshalIndent(certFile{DevicePin: pin, Signed: signed}, "", "  ")
	if err != nil {
		return "", err
	}
	return name, h.SaveCaseFile(c, name, b)
}

// Certificates are the erasure certificates kept with a case.
func (h *Home) Certificates(c *Case) ([]KeptCertificate, error) {
	files, err := h.CaseFiles(c, "erasure-")
	if err != nil {
		return nil, err
	}
	var out []KeptCertificate
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var cf certFile
		if err := json.Unmarshal(raw, &cf); err != nil {
			return nil, fmt.Errorf("certificate %s: %v", filepath.Base(f), err)
		}
		out = append(out, KeptCertificate{Signed: cf.Signed, Pin: cf.DevicePin})
	}
	return out, nil
}

// knownPin finds which paired device's key signed a certificate.
func (h *Home) knownPin(signed []byte, extra ...string) string {
	pins := append([]string(nil), extra...)
	if devs, err := h.Devices(); err == nil {
		for _, d := range devs {
			pins = append(pins, d.Pin)
		}
	}
	if cases, err := h.Cases(); err == nil {
		for _, c := range cases {
			pins = append(pins, c.DevicePins...)
		}
	}
	for _, p := range pins {
		if p == "" {
			continue
		}
		if _, err := custody.VerifyCertificatePin(signed, p); err == nil {
			return p
		}
	}
	return ""
}

// LifecycleAPI is what sync pulls besides recordings (link.Client).
type LifecycleAPI interface {
	Audit(ctx context.Context, after uint64) ([]byte, error)
	Certificates(ctx context.Context) ([][]byte, error)
}

// PullCustody fetches the device's audit chain into the copy kept with
// each case that records or recorded with the device (verifying that it
// extends what the laptop holds), and any erasure certificates waiting on
// the device. Each case's laptop chain notes the device chain's head it
// now holds: the link between the two chains. A case's report shows only
// the records that concern it (CaseReport).
func (h *Home) PullCustody(ctx context.Context, api LifecycleAPI, dev *Device) (certs int, err error) {
	targets, err := h.casesWith(dev)
	if err != nil {
		return 0, err
	}
	raw, err := api.Audit(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	list, err := api.Certificates(ctx)
	if err != nil {
		return 0, fmt.Errorf("certificates: %w", err)
	}
	now := time.Now()
	for _, c := range targets {
		before, _ := LoadChain(h.caseDir(c.ID))
		if err := AppendChain(h.caseDir(c.ID), raw); err != nil {
			return certs, fmt.Errorf("audit: the device's chain does not extend the copy on this laptop: %w", err)
		}
		if recs, err := LoadChain(h.caseDir(c.ID)); err == nil && len(recs) > len(before) {
			head, _ := chainHead(h.caseDir(c.ID))
			if err := h.noteCase(c, custody.Record{Event: custody.EventDeviceChain, Count: int(recs[len(recs)-1].Seq), SHA256: head}, now); err != nil {
				return certs, err
			}
		}
	}
	// A certificate goes with every case the device records or recorded
	// to, and with every case that kept the pin of the key that signed it
	// (a reset on the device's buttons, after a case was closed).
	all, err := h.Cases()
	if err != nil {
		return certs, err
	}
	for _, signed := range list {
		pin, kept := h.knownPin(signed, dev.Pin), false
		for _, c := range all {
			if c.Erased != nil || !(slices.ContainsFunc(targets, func(t *Case) bool { return t.ID == c.ID }) || pin != "" && slices.Contains(c.DevicePins, pin)) {
				continue
			}
			before, _ := h.CaseFiles(c, "erasure-")
			if _, err := h.SaveCertificate(c, signed, pin); err != nil {
				return certs, err
			}
			after, _ := h.CaseFiles(c, "erasure-")
			kept = kept || len(after) > len(before)
		}
		if kept {
			certs++
		}
	}
	return certs, nil
}

// casesWith are the cases, not erased, that record or recorded with dev:
// its current case first.
func (h *Home) casesWith(dev *Device) ([]*Case, error) {
	cases, err := h.Cases()
	if err != nil {
		return nil, err
	}
	var out []*Case
	for _, c := range cases {
		if c.Erased != nil {
			continue
		}
		if c.ID == dev.Case {
			out = append([]*Case{c}, out...)
		} else if c.Device == dev.ID || slices.Contains(c.DevicePins, dev.Pin) {
			out = append(out, c)
		}
	}
	return out, nil
}

// chainHead is the line hash of the last record kept in caseDir's copy of
// the device's chain.
func chainHead(caseDir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(caseDir, ChainFile))
	if err != nil {
		return "", err
	}
	ls := chainLines(raw)
	if len(ls) == 0 {
		return custody.ZeroHash, nil
	}
	return custody.LineHash(ls[len(ls)-1]), nil
}

// CaseReport writes the chain of custody of a case: only the device
// records that concern it (its recordings, its pairing and case changes,
// the device's resets), its laptop chain (consent, exports, close,
// erasure), times in the laptop's zone and case labels, not ids.
// Certificates are verified against the pins kept with the case.
func (h *Home) CaseReport(c *Case, format string, w *strings.Builder) error {
	records, err := LoadChain(h.caseDir(c.ID))
	if err != nil {
		return err
	}
	certs, err := h.Certificates(c)
	if err != nil {
		return err
	}
	for i := range certs {
		if certs[i].Pin == "" {
			certs[i].Pin = h.knownPin(certs[i].Signed, c.DevicePins...)
		}
	}
	labels := map[string]string{}
	if cases, err := h.Cases(); err == nil {
		for _, o := range cases {
			labels[o.ID] = o.Label
		}
	}
	vault := map[string]bool{}
	if recs, err := h.Recordings(); err == nil {
		for _, vr := range recs {
			if vr.Case == c.ID {
				vault[vr.ID] = true
			}
		}
	}
	view := &CaseView{CaseID: c.ID, Labels: labels, Vault: vault, Loc: time.Local}
	if c.Erased != nil {
		view.Erased = c.Erased.In(time.Local).Format("2006-01-02 15:04 MST")
	}
	laptopRaw, lerr := os.ReadFile(filepath.Join(h.caseDir(c.ID), LaptopChainFile))
	if lerr == nil || errors.Is(lerr, fs.ErrNotExist) {
		recs, verr := custody.VerifyChain(laptopRaw)
		view.Laptop, view.LaptopErr = recs, verr
	} else {
		view.LaptopErr = lerr
	}
	exports, _ := h.Exports(c)
	view.LaptopText = func(r custody.Record) string { return laptopEventText(c, exports, labels, r) }
	return ReportCase(w, records, certs, c.Label, format, view)
}

// laptopEventText describes a record of a case's laptop chain, checking
// what the case keeps against the digest the record holds.
func laptopEventText(c *Case, exports []ExportRecord, labels map[string]string, r custody.Record) string {
	switch r.Event {
	case custody.EventConsentGiven:
		s := "consent recorded"
		if r.Count > 1 {
			s = "consent amended"
		}
		if i := r.Count - 1; i >= 0 && i < len(c.Consent) {
			cn := c.Consent[i]
			var scopes []string
			for _, sc := range Scopes {
				if cn.Grants(sc) {
					scopes = append(scopes, sc)
				}
			}
			if len(scopes) == 0 {
				scopes = []string{"none"}
			}
			s += fmt.Sprintf(" (given %s by %s): %s", cn.Date, cn.Who, strings.Join(scopes, ", "))
			if cn.RetentionDays != nil {
				s += fmt.Sprintf("; retention %d days", *cn.RetentionDays)
			}
			if jsonDigest(cn) != r.SHA256 {
				s += "; THE ENTRY KEPT WITH THE CASE WAS CHANGED SINCE"
			}
		}
		return s
	case custody.EventConsentWithdrawn:
		s := "consent withdrawn for " + r.Detail
		if i := r.Count - 1; i >= 0 && i < len(c.Withdrawals) {
			w := c.Withdrawals[i]
			s += fmt.Sprintf(" on %s by %s", w.Date, w.Who)
			if jsonDigest(w) != r.SHA256 {
				s += "; THE WITHDRAWAL KEPT WITH THE CASE WAS CHANGED SINCE"
			}
		}
		return s
	case custody.EventExported:
		what, where := "recording "+r.Recording, ""
		for _, e := range exports {
			if e.SHA256 == r.SHA256 && e.Recording == r.Recording {
				if e.What != "" {
					what = e.What + " of recording " + r.Recording
				}
				where = " → " + e.Path
				break
			}
		}
		s := fmt.Sprintf("%s exported for %s: %s, sha256 %s%s", what, r.Detail, reportBytes(r.Bytes), r.SHA256, where)
		return s + " (plaintext: erasing the case does not reach it)"
	case custody.EventCaseUsed:
		return "a device (key pin " + r.SHA256 + ") set to record to this case"
	case custody.EventDeviceChain:
		return fmt.Sprintf("the device's audit chain pulled up to seq %d (line hash %s)", r.Count, r.SHA256)
	case custody.EventCaseClosed:
		return fmt.Sprintf("case closed; footage to be crypto-erased %s later", plural(r.Count, "day", "days"))
	case custody.EventCaseErased:
		s := fmt.Sprintf("case crypto-erased: key destroyed, %s removed from the vault", plural(r.Count, "file", "files"))
		if r.Detail == "retention" {
			s += " (retention run: the retention period after close had passed)"
		}
		return s
	}
	return string(r.Event)
}
