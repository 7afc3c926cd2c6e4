package laptop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// PullCustody fetches the device's audit chain into the case's copy
// (verifying that it extends what the laptop holds) and any erasure
// certificates waiting on the device.
func (h *Home) PullCustody(ctx context.Context, api LifecycleAPI, dev *Device) (certs int, err error) {
	c, err := h.Case(dev.Case)
	if err != nil {
		return 0, err
	}
	raw, err := api.Audit(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	if err := AppendChain(h.caseDir(c.ID), raw); err != nil {
		return 0, fmt.Errorf("audit: the device's chain does not extend the copy on this laptop: %w", err)
	}
	list, err := api.Certificates(ctx)
	if err != nil {
		return 0, fmt.Errorf("certificates: %w", err)
	}
	for _, signed := range list {
		before, _ := h.CaseFiles(c, "erasure-")
		if _, err := h.SaveCertificate(c, signed, h.knownPin(signed, dev.Pin)); err != nil {
			return certs, err
		}
		after, _ := h.CaseFiles(c, "erasure-")
		if len(after) > len(before) {
			certs++
		}
	}
	return certs, nil
}

// CaseReport writes the chain of custody of a case.
func (h *Home) CaseReport(c *Case, format string, w *strings.Builder) error {
	records, err := LoadChain(h.caseDir(c.ID))
	if err != nil {
		return err
	}
	certs, err := h.Certificates(c)
	if err != nil {
		return err
	}
	return Report(w, records, certs, c.Label, format)
}
