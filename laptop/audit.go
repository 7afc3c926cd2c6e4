package laptop

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// ChainFile is the name, in a case's directory (HOME/cases/<id>/), of the
// laptop's copy of the device's audit chain.
const ChainFile = "audit.log"

// AppendChain keeps the audit chain the device sent (its exact lines, as
// the device's Records returns them: the whole chain, or the part after a
// given seq) in caseDir/audit.log. The new part must extend the kept part:
// records the laptop already holds must come back byte for byte, and the
// first new record must chain onto the last kept one. A device that
// rewrote, removed or reordered its history is an error wrapping a
// *custody.ChainError that names the seq; the kept copy is then left as it
// was.
//
// After a factory reset a device keeps only its reset record
// (custody.VerifyDeviceChain): a laptop with no copy yet keeps the chain
// from that record, anchored at its seq-1 and prev, which the report
// checks against the erasure certificate; a laptop whose copy ends where
// the reset record starts extends it as ever.
func AppendChain(caseDir string, raw []byte) error {
	path := filepath.Join(caseDir, ChainFile)
	kept, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("append chain: %v", err)
	}
	keptRecs, err := custody.VerifyDeviceChain(kept)
	if err != nil {
		return fmt.Errorf("append chain: the copy kept in %s is damaged: %w", path, err)
	}
	if len(raw) == 0 {
		return nil
	}
	keptLines := chainLines(kept)
	base, baseHead := custody.Anchor(kept)
	n := base + uint64(len(keptRecs)) // the last seq kept
	lineHash := func(seq uint64) string {
		if seq == base {
			return baseHead
		}
		return custody.LineHash(keptLines[seq-base-1])
	}
	// Where does the device's part start? If its first line is unreadable,
	// take it as following the kept copy: the check below names the seq.
	start := n
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		if first, err := custody.ParseLine(raw[:i]); err == nil {
			start = first.Seq - 1
		}
	}
	anchorSeq, anchorHead := custody.Anchor(raw)
	switch {
	case len(keptRecs) == 0 && anchorSeq > 0:
		// A new laptop after a reset: the chain starts at the reset record.
		base, baseHead, n, start = anchorSeq, anchorHead, anchorSeq, anchorSeq
		kept, keptLines = nil, nil
		lineHash = func(uint64) string { return anchorHead }
	case start > n && anchorSeq == start:
		return fmt.Errorf("append chain: %w", &custody.ChainError{Seq: n + 1, Reason: fmt.Sprintf("the device was reset after seq %d and keeps only its reset record (seq %d); the records between were never pulled to this laptop and are gone from the device: the erasure certificate's audit head covers them", start, start+1)})
	case start > n:
		return fmt.Errorf("append chain: the device sent records from seq %d, but the copy on this laptop ends at seq %d: fetch the records after seq %d", start+1, n, n)
	case start < base:
		return fmt.Errorf("append chain: %w", &custody.ChainError{Seq: start + 1, Reason: fmt.Sprintf("the device sent records from seq %d, before the reset record (seq %d) this laptop's copy starts at", start+1, base+1)})
	}
	recs, err := custody.VerifyChainFrom(start, lineHash(start), raw)
	if err != nil {
		return fmt.Errorf("append chain: the device's audit chain does not extend the copy kept on this laptop (the device's history was changed): %w", err)
	}
	newLines := chainLines(raw)
	end := start + uint64(len(recs))
	for i, r := range recs {
		if r.Seq <= n && !bytes.Equal(newLines[i], keptLines[r.Seq-base-1]) {
			return fmt.Errorf("append chain: %w", &custody.ChainError{Seq: r.Seq, Reason: "the device rewrote this record: it differs from the copy kept on this laptop"})
		}
	}
	if end < n {
		return fmt.Errorf("append chain: %w", &custody.ChainError{Seq: end + 1, Reason: fmt.Sprintf("the device's chain ends at seq %d, but this laptop holds records up to seq %d: the device removed records", end, n)})
	}
	if end == n {
		return nil
	}
	var b bytes.Buffer
	b.Write(kept)
	for _, l := range newLines[n-start:] {
		b.Write(l)
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(caseDir, 0o700); err != nil {
		return fmt.Errorf("append chain: %v", err)
	}
	if err := storage.WriteFileAtomic(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("append chain: %v", err)
	}
	return nil
}

// chainLines splits newline-terminated lines, without their newlines.
func chainLines(raw []byte) [][]byte {
	var out [][]byte
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break
		}
		out = append(out, raw[:i])
		raw = raw[i+1:]
	}
	return out
}

// LoadChain reads and verifies the copy of the audit chain kept in
// caseDir. A case without one has no records.
func LoadChain(caseDir string) ([]custody.Record, error) {
	raw, err := os.ReadFile(filepath.Join(caseDir, ChainFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load chain: %v", err)
	}
	recs, err := custody.VerifyDeviceChain(raw)
	if err != nil {
		return nil, fmt.Errorf("load chain: %w", err)
	}
	return recs, nil
}

// KeptCertificate is an erasure certificate as the laptop keeps it: the
// document the device signed, and the pin of the device it was paired with
// (Device.Pin), against which Report verifies it.
type KeptCertificate struct {
	Signed []byte
	Pin    string
}

//go:embed audit.html.tmpl
var reportHTML string

var reportTmpl = template.Must(template.New("report").Parse(reportHTML))

// Report writes the chain of custody of a case for a data-protection
// officer: for each recording, when it was recorded, for how long and in
// how many segments; when it was transferred to this laptop, acknowledged
// and deleted on the device; and, for closed cases, what the factory reset
// erased according to its erasure certificate (verified here against the
// device's pin) and whether each part had been synced first. The audit
// chain is re-verified. format is "text" (aligned plain text) or "html" (one
// self-contained printable page, no scripts). Apart from caseLabel, which
// the laptop supplies, the report holds only what the chain and the
// certificates hold: opaque ids, counts, sizes, hashes and times.
func Report(w io.Writer, records []custody.Record, certs []KeptCertificate, caseLabel string, format string) error {
	return ReportCase(w, records, certs, caseLabel, format, nil)
}

// CaseView narrows a report to one case of a device that several cases
// use, and adds what the laptop knows of it.
type CaseView struct {
	// CaseID is the case: of the device's records, the report shows those
	// of its recordings (started for it, or in Vault), those naming it
	// (pairing, case changes) and factory resets; the whole chain is
	// verified nonetheless.
	CaseID string
	// Vault are the case's recordings in the vault.
	Vault map[string]bool
	// Labels name cases by id: the report shows labels, not ids.
	Labels map[string]string
	// Loc is the zone times are shown in; nil means UTC.
	Loc *time.Location
	// Erased is when the case was erased, as shown; "" if it was not.
	Erased string
	// Laptop is the case's laptop chain (verified), LaptopErr why it
	// does not verify, LaptopText what each record says.
	Laptop     []custody.Record
	LaptopErr  error
	LaptopText func(custody.Record) string
}

// ReportCase is Report narrowed to a case by view (nil: the whole chain).
func ReportCase(w io.Writer, records []custody.Record, certs []KeptCertificate, caseLabel string, format string, view *CaseView) error {
	if format != "text" && format != "html" {
		return fmt.Errorf("report: unknown format %q: use text or html", format)
	}
	rep := buildReport(records, certs, caseLabel, view)
	if format == "html" {
		if err := reportTmpl.Execute(w, rep); err != nil {
			return fmt.Errorf("report: %v", err)
		}
		return nil
	}
	if err := rep.writeText(w); err != nil {
		return fmt.Errorf("report: %v", err)
	}
	return nil
}

type auditReport struct {
	Label      string
	Chain      string
	ChainOK    bool
	Head       string
	Period     string
	Laptop     bool // a case view: the laptop's chain is shown
	LapChain   string
	LapChainOK bool
	LapEvents  []reportEvent
	Recordings []reportRecording
	Events     []reportEvent
	Certs      []reportCert
}

// reportRecording is one recording's custody. Empty fields print as "—".
type reportRecording struct {
	ID           string
	Case         string
	Status       string
	StatusOK     bool
	Recorded     string
	Length       string
	Size         string
	Ended        string
	Transferred  string
	Acknowledged string
	Deleted      string
	Erased       string
}

type reportEvent struct {
	Seq, When, What string
}

type reportCert struct {
	N          int
	Verified   bool
	Verdict    string
	Device     string
	Issued     string
	Head       string
	HeadOK     bool
	Reset      string
	ResetOK    bool
	Summary    string
	Recordings []reportErased
}

type reportErased struct {
	ID, State, Segments, Synced, NotSynced, Manifest, Verdict string
	Lost                                                      bool
}

// reportTime prints times in a zone.
type reportTime struct{ loc *time.Location }

// format is t as the report prints it, with its zone.
func (rt reportTime) format(t time.Time) string {
	return t.In(rt.loc).Format("2006-01-02 15:04:05 MST")
}

// when is a record's time as the report prints it.
func (rt reportTime) when(r custody.Record) string {
	if t, ok := r.WallTime(); ok {
		return rt.format(t)
	}
	return "clock not set, " + reportDuration(time.Duration(r.MonoMS)*time.Millisecond) + " after start-up"
}

func reportDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %02d min %02d s", h, m, s)
	case m > 0:
		return fmt.Sprintf("%d min %02d s", m, s)
	}
	return fmt.Sprintf("%d s", s)
}

func reportBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// span is "T" or "T1 to T2" for a run of records.
func (rt reportTime) span(rs []custody.Record) string {
	first, last := rt.when(rs[0]), rt.when(rs[len(rs)-1])
	if first == last {
		return first
	}
	return first + " to " + last
}

// reportRecLines gives each record's canonical line (the encoding is the
// line: custody.ParseLine accepts nothing else).
func reportRecLines(records []custody.Record) ([]byte, bool) {
	var b bytes.Buffer
	for _, r := range records {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, false
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), true
}

// recCustody gathers one recording's records.
type recCustody struct {
	id                           string
	started, ended, sealed       *custody.Record
	transferred, acked, deleted  []custody.Record
	transferredSegs, ackedSegs   map[int]bool
	manifestAcked, bootInBetween bool
	erased                       *custody.ErasedRecording
	certN                        int // the certificate that lists it
	certIssued                   string
	rt                           reportTime
	view                         *CaseView
}

func buildReport(records []custody.Record, certs []KeptCertificate, label string, view *CaseView) *auditReport {
	rep := &auditReport{Label: label}
	rt := reportTime{loc: time.UTC}
	if view != nil && view.Loc != nil {
		rt.loc = view.Loc
	}

	// The chain itself.
	lines, encOK := reportRecLines(records)
	switch {
	case len(records) == 0:
		rep.Chain = "no audit records held for this case"
		rep.ChainOK = true
	case !encOK:
		rep.Chain = "BROKEN: records cannot be encoded"
	default:
		first := records[0]
		_, err := custody.VerifyChainFrom(first.Seq-1, first.Prev, lines)
		if err != nil {
			rep.Chain = "BROKEN: " + err.Error()
			break
		}
		last := records[len(records)-1]
		rep.ChainOK = true
		rep.Chain = fmt.Sprintf("%s, seq %d to %d: hash chain intact", plural(len(records), "record", "records"), first.Seq, last.Seq)
		if first.Seq == 1 && first.Prev == custody.ZeroHash {
			rep.Chain += ", complete from the device's first record"
		} else if first.Event == custody.EventReset {
			rep.Chain += ", from a factory reset (the device keeps nothing before its reset record)"
		}
		ls := chainLines(lines)
		rep.Head = custody.LineHash(ls[len(ls)-1])
		rep.Period = rt.when(first) + " to " + rt.when(last)
	}
	lineHashBySeq := map[uint64]string{}
	if rep.ChainOK {
		for i, l := range chainLines(lines) {
			lineHashBySeq[records[i].Seq] = custody.LineHash(l)
		}
	}
	all := records
	if view != nil {
		records = view.filter(records)
		if rep.ChainOK && len(all) > 0 {
			rep.Chain += fmt.Sprintf("; %d of them concern this case", len(records))
			rep.Period = ""
			if len(records) > 0 {
				rep.Period = rt.when(records[0]) + " to " + rt.when(records[len(records)-1])
			}
		}
		rep.Laptop = true
		switch {
		case view.LaptopErr != nil:
			rep.LapChain = "BROKEN: " + view.LaptopErr.Error()
		case len(view.Laptop) == 0:
			rep.LapChain, rep.LapChainOK = "no laptop records for this case", true
		default:
			rep.LapChain, rep.LapChainOK = fmt.Sprintf("%s, seq 1 to %d: hash chain intact", plural(len(view.Laptop), "record", "records"), len(view.Laptop)), true
		}
		for _, r := range view.Laptop {
			what := string(r.Event)
			if view.LaptopText != nil {
				what = view.LaptopText(r)
			}
			rep.LapEvents = append(rep.LapEvents, reportEvent{Seq: fmt.Sprint(r.Seq), When: rt.when(r), What: what})
		}
	}

	// Recordings, in the order they first appear.
	byID := map[string]*recCustody{}
	var order []*recCustody
	get := func(id string) *recCustody {
		c := byID[id]
		if c == nil {
			c = &recCustody{id: id, transferredSegs: map[int]bool{}, ackedSegs: map[int]bool{}, rt: rt, view: view}
			byID[id] = c
			order = append(order, c)
		}
		return c
	}
	for i := range records {
		r := records[i]
		if r.Event == custody.EventBoot {
			for _, c := range order {
				if c.started != nil && c.ended == nil && c.sealed == nil {
					c.bootInBetween = true
				}
			}
		}
		if r.Recording == "" {
			rep.Events = append(rep.Events, reportEvent{Seq: fmt.Sprint(r.Seq), When: rt.when(r), What: view.eventText(r)})
			continue
		}
		c := get(r.Recording)
		switch r.Event {
		case custody.EventRecordingStarted:
			c.started = &records[i]
		case custody.EventRecordingStopped:
			c.ended = &records[i]
		case custody.EventRecordingSealed, custody.EventRecordingInterrupted:
			c.sealed = &records[i]
		case custody.EventSegmentTransferred:
			c.transferred = append(c.transferred, r)
			for _, s := range r.Segments {
				c.transferredSegs[s] = true
			}
		case custody.EventAcknowledged:
			c.acked = append(c.acked, r)
			for _, s := range r.Segments {
				c.ackedSegs[s] = true
			}
			// "with_manifest": what devices wrote before the format's
			// "manifest" was kept to.
			c.manifestAcked = c.manifestAcked || r.Detail == "manifest" || r.Detail == "with_manifest"
		case custody.EventDeleted:
			c.deleted = append(c.deleted, r)
		default:
			rep.Events = append(rep.Events, reportEvent{Seq: fmt.Sprint(r.Seq), When: rt.when(r), What: view.eventText(r)})
		}
	}

	// Certificates.
	for i, cert := range certs {
		rc := reportCert{N: i + 1}
		c, err := custody.VerifyCertificatePin(cert.Signed, cert.Pin)
		switch {
		case cert.Pin == "":
			rc.Verdict = "NOT VERIFIED: no device pin to check it against"
		case err != nil:
			rc.Verdict = "NOT VALID: " + err.Error()
		default:
			rc.Verified = true
			rc.Verdict = "signature valid: signed by the paired device (key pin " + c.Pin + ")"
		}
		if !rc.Verified {
			rep.Certs = append(rep.Certs, rc)
			continue
		}
		rc.Device = c.Device
		rc.Issued = rt.format(c.Issued)
		if !c.WallTrusted {
			rc.Issued += " (device clock not set by the laptop: may be wrong)"
		}
		// The reset record: its digest names this certificate, and it
		// follows the chain's head the certificate signed.
		digest := custody.CertificateDigest(cert.Signed)
		var reset *custody.Record
		for i := range all {
			if all[i].Event == custody.EventReset && all[i].SHA256 == digest {
				reset = &all[i]
				break
			}
		}
		anchored := reset != nil && reset.Seq == c.AuditSeq+1 && reset.Prev == c.AuditHead
		switch h, ok := lineHashBySeq[c.AuditSeq]; {
		case c.AuditSeq == 0 && c.AuditHead == custody.ZeroHash:
			rc.Head, rc.HeadOK = "the device's audit chain was empty", true
		case ok && h == c.AuditHead:
			rc.Head, rc.HeadOK = fmt.Sprintf("seq %d: matches the audit chain", c.AuditSeq), true
		case ok:
			rc.Head = fmt.Sprintf("seq %d: DOES NOT MATCH the audit chain", c.AuditSeq)
		case anchored:
			rc.Head, rc.HeadOK = fmt.Sprintf("seq %d: the reset record (seq %d) chains onto it; the device keeps nothing before its reset", c.AuditSeq, reset.Seq), true
		default:
			rc.Head = fmt.Sprintf("seq %d (%s): not among the records held", c.AuditSeq, c.AuditHead)
		}
		switch {
		case reset == nil:
			rc.Reset = "no reset record in the audit records held refers to this certificate"
		case anchored:
			rc.Reset, rc.ResetOK = fmt.Sprintf("seq %d, %s: the device recorded the reset with this certificate", reset.Seq, rt.when(*reset)), true
		default:
			rc.Reset = fmt.Sprintf("seq %d, %s: records the reset with this certificate, but DOES NOT FOLLOW the audit head it signed (seq %d)", reset.Seq, rt.when(*reset), c.AuditSeq)
		}
		lost, shown := 0, 0
		for j := range c.Recordings {
			er := c.Recordings[j]
			if view != nil && !view.ours(er.ID, all) {
				continue
			}
			shown++
			synced := 0
			for _, s := range er.Segments {
				if s.Synced {
					synced++
				}
			}
			e := reportErased{
				ID: er.ID, State: er.State,
				Segments: fmt.Sprint(len(er.Segments)), Synced: fmt.Sprint(synced), NotSynced: fmt.Sprint(len(er.Segments) - synced),
				Manifest: "not synced",
			}
			if er.ManifestSynced {
				e.Manifest = "synced"
			} else if er.Manifest == "" {
				e.Manifest = "none"
			}
			if er.Complete {
				e.Verdict = "erased; everything had been synced to the laptop"
			} else {
				e.Verdict, e.Lost = "erased; parts never reached the laptop and are lost", true
				lost++
			}
			if er.State == "unreadable" {
				e.Verdict, e.Lost = "erased; its index was damaged, so its parts cannot be listed", true
			}
			rc.Recordings = append(rc.Recordings, e)
			rcd := get(er.ID)
			rcd.erased, rcd.certN, rcd.certIssued = &c.Recordings[j], rc.N, rc.Issued
		}
		rc.Summary = fmt.Sprintf("%s still on the device were erased", plural(shown, "recording", "recordings"))
		if view != nil {
			rc.Summary = fmt.Sprintf("%s of this case still on the device were erased", plural(shown, "recording", "recordings"))
		}
		if shown == 0 {
			rc.Summary = "no recordings were left on the device: nothing else to erase"
		} else if lost > 0 {
			rc.Summary += fmt.Sprintf("; %d of them had not been fully synced", lost)
		} else {
			rc.Summary += "; all had been fully synced first"
		}
		if c.OtherEntries > 0 && view == nil {
			rc.Summary += fmt.Sprintf("; %s removed", plural(c.OtherEntries, "temporary file", "temporary files"))
		}
		rep.Certs = append(rep.Certs, rc)
	}
	for _, c := range order {
		rep.Recordings = append(rep.Recordings, c.row())
	}
	return rep
}

func (c *recCustody) row() reportRecording {
	row := reportRecording{ID: c.id}
	if c.started != nil {
		row.Recorded = c.rt.when(*c.started)
		row.Case = c.view.label(c.started.CaseRef)
	}
	total := -1
	if c.sealed != nil {
		total = c.sealed.Count
		row.Size = plural(total, "segment", "segments") + ", " + reportBytes(c.sealed.Bytes) + " encrypted"
		if c.sealed.SHA256 != "" {
			row.Size += "; segments digest " + c.sealed.SHA256
		}
	} else if c.erased != nil {
		total = len(c.erased.Segments)
		row.Size = plural(total, "segment", "segments")
	}
	endRec := c.ended
	if endRec == nil && c.sealed != nil && c.sealed.Event == custody.EventRecordingSealed {
		endRec = c.sealed
	}
	if c.started != nil && endRec != nil && !c.bootInBetween && endRec.MonoMS >= c.started.MonoMS {
		row.Length = reportDuration(time.Duration(endRec.MonoMS-c.started.MonoMS) * time.Millisecond)
	}
	switch {
	case c.sealed != nil && c.sealed.Event == custody.EventRecordingInterrupted:
		row.Ended = "interrupted (power loss or crash), found at " + c.rt.when(*c.sealed) + "; every sealed segment kept"
		if row.Length == "" {
			row.Length = "unknown (interrupted)"
		}
	case endRec != nil:
		row.Ended = c.rt.when(*endRec)
		if endRec.Detail != "" {
			row.Ended += " (" + endRec.Detail + ")"
		}
	}
	if len(c.transferred) > 0 {
		row.Transferred = c.rt.span(c.transferred) + "; " + plural(len(c.transferredSegs), "segment", "segments")
	}
	if len(c.acked) > 0 {
		row.Acknowledged = c.rt.span(c.acked) + "; " + plural(len(c.ackedSegs), "segment", "segments")
		if c.manifestAcked {
			row.Acknowledged += " and the manifest"
		}
		row.Acknowledged += ", verified by decryption on the laptop, then deleted on the device"
	}
	// deleted means the whole recording left the device; an older device
	// wrote it at every acknowledgement, so it counts only when every
	// segment was acknowledged.
	if total < 0 && len(c.deleted) > 0 {
		total = c.deleted[len(c.deleted)-1].Count
	}
	acked := len(c.ackedSegs)
	gone := len(c.deleted) > 0 && total >= 0 && acked >= total
	if gone {
		row.Deleted = c.rt.span(c.deleted) + ": the recording's last files removed from the device"
	}
	if c.erased != nil {
		e := c.erased
		synced := 0
		for _, s := range e.Segments {
			if s.Synced {
				synced++
			}
		}
		row.Erased = fmt.Sprintf("at the factory reset (certificate %d, %s): %s left on the device, %d synced before, %d never synced",
			c.certN, c.certIssued, plural(len(e.Segments), "segment", "segments"), synced, len(e.Segments)-synced)
	}
	switch {
	case c.view != nil && c.view.Erased != "" && (len(c.ackedSegs) > 0 || c.erased != nil):
		row.Status, row.StatusOK = "erased "+c.view.Erased+" with the case: its key was destroyed, no copy can be decrypted", true
	case c.erased != nil && c.erased.Complete:
		row.Status, row.StatusOK = "on this laptop; the device's copy was erased at the reset", true
	case c.erased != nil:
		row.Status = "erased at the reset before it was fully synced: parts are lost"
	case gone:
		row.Status, row.StatusOK = "on this laptop; deleted from the device", true
	case total >= 0 && acked >= total && total > 0:
		row.Status, row.StatusOK = "on this laptop; the device holds only its index", true
	case acked > 0 && total > 0:
		row.Status = fmt.Sprintf("partly synced: %d of %d segments acknowledged and deleted from the device; the other %d are still on it", acked, total, total-acked)
	case acked > 0:
		row.Status = fmt.Sprintf("partly synced (%s acknowledged and deleted from the device); the rest is on the device", plural(acked, "segment", "segments"))
	case c.started != nil && c.ended == nil && c.sealed == nil:
		row.Status = "still recording, or cut off (no end recorded)"
	default:
		row.Status = "on the device, not yet synced"
	}
	return row
}

// filter keeps the records of view's case.
func (v *CaseView) filter(records []custody.Record) []custody.Record {
	var out []custody.Record
	for _, r := range records {
		switch {
		case r.Recording != "":
			if v.ours(r.Recording, records) {
				out = append(out, r)
			}
		case r.CaseRef != "":
			if r.CaseRef == v.CaseID {
				out = append(out, r)
			}
		case r.Event == custody.EventReset:
			out = append(out, r)
		}
	}
	return out
}

// ours reports whether recording id belongs to the view's case: it was
// started for it, or is in its vault.
func (v *CaseView) ours(id string, records []custody.Record) bool {
	if v.Vault[id] {
		return true
	}
	for _, r := range records {
		if r.Event == custody.EventRecordingStarted && r.Recording == id {
			return r.CaseRef == v.CaseID
		}
	}
	return false
}

// label names a case reference: its label in a case view, else the id.
func (v *CaseView) label(ref string) string {
	if v != nil && v.Labels[ref] != "" {
		return v.Labels[ref]
	}
	return ref
}

// eventText is reportEventText with case labels.
func (v *CaseView) eventText(r custody.Record) string {
	if v != nil && r.CaseRef != "" {
		r.CaseRef = v.label(r.CaseRef)
	}
	return reportEventText(r)
}

func reportEventText(r custody.Record) string {
	var s string
	switch r.Event {
	case custody.EventBoot:
		s = "device started"
	case custody.EventPaired:
		if r.Detail == "new_case" {
			return "the paired laptop set the case recorded to: " + r.CaseRef
		}
		s = "paired with a laptop"
		if r.CaseRef != "" {
			s += " for case " + r.CaseRef
		}
		if r.SHA256 != "" {
			s += " (laptop key pin " + r.SHA256 + ")"
		}
		return s
	case custody.EventPairingFailed:
		s = "pairing attempt failed"
	case custody.EventClockSet:
		s = "clock set by the paired laptop"
	case custody.EventCaseCleared:
		s = "the paired laptop closed the case"
		if r.CaseRef != "" {
			s += " " + r.CaseRef
		}
		return s + ": no case until one is chosen"
	case custody.EventReset:
		s = fmt.Sprintf("factory reset: %s erased", plural(r.Count, "recording", "recordings"))
		if r.SHA256 != "" {
			s += "; certificate digest " + r.SHA256
		}
		return s
	case custody.EventRecovered:
		s = fmt.Sprintf("audit log recovered after a power cut: a torn last record (%s) removed", reportBytes(r.Bytes))
		return s
	default:
		s = string(r.Event)
	}
	if r.Detail != "" {
		s += " (" + r.Detail + ")"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (rep *auditReport) writeText(w io.Writer) error {
	var b strings.Builder
	kv := func(tw *tabwriter.Writer, indent, k, v string) {
		fmt.Fprintf(tw, "%s%s\t%s\n", indent, k, dash(v))
	}
	b.WriteString("ATTUNE: CHAIN OF CUSTODY\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	kv(tw, "", "Case", rep.Label)
	kv(tw, "", "Audit chain", rep.Chain)
	kv(tw, "", "Chain head", rep.Head)
	kv(tw, "", "Period", rep.Period)
	tw.Flush()

	fmt.Fprintf(&b, "\nRECORDINGS (%d)\n", len(rep.Recordings))
	if len(rep.Recordings) == 0 {
		b.WriteString("  none\n")
	}
	for _, r := range rep.Recordings {
		fmt.Fprintf(&b, "\nRecording %s\n", r.ID)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		kv(tw, "  ", "Status", r.Status)
		kv(tw, "  ", "Case", r.Case)
		kv(tw, "  ", "Recorded", r.Recorded)
		kv(tw, "  ", "Length", r.Length)
		kv(tw, "  ", "Size", r.Size)
		kv(tw, "  ", "Ended", r.Ended)
		kv(tw, "  ", "Transferred", r.Transferred)
		kv(tw, "  ", "Acknowledged", r.Acknowledged)
		kv(tw, "  ", "Deleted", r.Deleted)
		kv(tw, "  ", "Erased", r.Erased)
		tw.Flush()
	}

	fmt.Fprintf(&b, "\nDEVICE EVENTS (%d)\n", len(rep.Events))
	if len(rep.Events) == 0 {
		b.WriteString("  none\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Seq\tTime\tEvent")
		for _, e := range rep.Events {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Seq, e.When, e.What)
		}
		tw.Flush()
	}

	if rep.Laptop {
		fmt.Fprintf(&b, "\nLAPTOP EVENTS (%d)\n", len(rep.LapEvents))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		kv(tw, "  ", "Laptop chain", rep.LapChain)
		tw.Flush()
		if len(rep.LapEvents) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  Seq\tTime\tEvent")
			for _, e := range rep.LapEvents {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Seq, e.When, e.What)
			}
			tw.Flush()
		}
	}

	fmt.Fprintf(&b, "\nERASURE CERTIFICATES (%d)\n", len(rep.Certs))
	if len(rep.Certs) == 0 {
		b.WriteString("  none (the case is open, or its device was not reset)\n")
	}
	for _, c := range rep.Certs {
		fmt.Fprintf(&b, "\nCertificate %d\n", c.N)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		kv(tw, "  ", "Signature", c.Verdict)
		if c.Verified {
			kv(tw, "  ", "Device", c.Device)
			kv(tw, "  ", "Issued", c.Issued)
			kv(tw, "  ", "Audit head", c.Head)
			kv(tw, "  ", "Reset record", c.Reset)
			kv(tw, "  ", "Erased", c.Summary)
		}
		tw.Flush()
		if len(c.Recordings) > 0 {
			b.WriteByte('\n')
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  Recording\tState\tSegments\tSynced\tNot synced\tManifest\tResult")
			for _, e := range c.Recordings {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.State, e.Segments, e.Synced, e.NotSynced, e.Manifest, e.Verdict)
			}
			tw.Flush()
		}
	}
	b.WriteString("\nThe device never holds a key that can decrypt footage; what it erased was ciphertext.\n" +
		"Times marked \"clock not set\" are counted from the device's start-up.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
