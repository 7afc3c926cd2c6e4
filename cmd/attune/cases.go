package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"attune.dev/attune/custody"
	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

const caseUsage = `usage:
  attune case new LABEL [--x25519] [--protect] [--device HOST:PORT]   a new case; the paired device records to it from now on
  attune case list [--json]
  attune case consent CASE --who NAME [--date YYYY-MM-DD] [--shared-review] [--supervision] [--clips] [--note TEXT]
  attune case close CASE [--device HOST:PORT] [--force] [--retention DAYS]
  attune case erase CASE                                               crypto-erase now: destroy the case key and the vault copy
CASE is a case id or its label.`

func (c *cli) caseCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, caseUsage)
		return errors.New("case: no subcommand")
	}
	switch args[0] {
	case "new":
		return c.caseNew(args[1:])
	case "list":
		return c.caseList(args[1:])
	case "consent":
		return c.caseConsent(args[1:])
	case "close":
		return c.caseClose(args[1:])
	case "erase":
		return c.caseErase(args[1:])
	}
	fmt.Fprintln(c.stderr, caseUsage)
	return fmt.Errorf("case: unknown subcommand %q", args[0])
}

// leading splits a leading positional argument from flags.
func leading(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// findCase resolves a case id or label.
func findCase(home *laptop.Home, ref string) (*laptop.Case, error) {
	if ref == "" {
		return nil, errors.New("give a case id or label (attune case list)")
	}
	cases, err := home.Cases()
	if err != nil {
		return nil, err
	}
	var match []*laptop.Case
	for _, cs := range cases {
		if cs.ID == ref || cs.Label == ref {
			match = append(match, cs)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no case %q (attune case list)", ref)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("several cases are labelled %q: use the case id", ref)
}

func (c *cli) caseNew(args []string) error {
	label, args := leading(args)
	fs, homeDir := c.flags("case new")
	x25519 := fs.Bool("x25519", false, "classic X25519 key instead of post-quantum hybrid")
	protect := fs.Bool("protect", false, "protect the case key with a passphrase")
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if label == "" {
		label = strings.Join(fs.Args(), " ")
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	dev, err := c.device(home, *device)
	if err != nil {
		return fmt.Errorf("case new: %v", err)
	}
	pass := ""
	if *protect {
		if pass, err = c.passphrase("passphrase for the new case key: ")(); err != nil {
			return err
		}
	}
	cs, err := home.NewCase(label, *x25519, pass)
	if err != nil {
		return err
	}
	client, err := c.client(home, dev)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.SetRecipients(c.ctx, cs.Recipients, cs.ID); err != nil {
		return fmt.Errorf("case new: the device did not take the new case (%w); case %s exists on this laptop only", err, cs.ID)
	}
	cs.Device, dev.Case = dev.ID, cs.ID
	if err := home.SaveCase(cs); err != nil {
		return err
	}
	if err := home.SaveDevice(dev); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "case %s (%q, %s key): device %s records to it from now on\n", cs.ID, cs.Label, cs.Kind, dev.ID)
	return nil
}

func (c *cli) client(home *laptop.Home, dev *laptop.Device) (*link.Client, error) {
	cert, _, err := home.Cert()
	if err != nil {
		return nil, err
	}
	return link.NewClient(c.dial, dev.Addr, cert, dev.Pin)
}

func caseState(cs *laptop.Case) string {
	switch {
	case cs.Erased != nil:
		return "erased " + cs.Erased.Local().Format("2006-01-02")
	case cs.Closed != nil:
		due, _ := cs.EraseDue()
		return "closed, erasure due " + due.Local().Format("2006-01-02")
	}
	return "open"
}

func (c *cli) caseList(args []string) error {
	fs, homeDir := c.flags("case list")
	jsonOut := fs.Bool("json", false, "JSON output")
	home, err := c.parseHome(fs, homeDir, args)
	if err != nil {
		return err
	}
	cases, err := home.Cases()
	if err != nil {
		return err
	}
	if *jsonOut {
		if cases == nil {
			cases = []*laptop.Case{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cases)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tLABEL\tCREATED\tKEY\tCONSENT\tSTATE")
	for _, cs := range cases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", cs.ID, cs.Label, cs.Created.Local().Format("2006-01-02"), cs.Kind, len(cs.Consent), caseState(cs))
	}
	return tw.Flush()
}

func (c *cli) caseConsent(args []string) error {
	ref, args := leading(args)
	fs, homeDir := c.flags("case consent")
	who := fs.String("who", "", "who consented (required)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "when consent was given, YYYY-MM-DD")
	shared := fs.Bool("shared-review", false, "consented to a shared review of the film")
	supervision := fs.Bool("supervision", false, "consented to use in the practitioner's supervision")
	clips := fs.Bool("clips", false, "consented to clips being given to the family")
	note := fs.String("note", "", "anything else agreed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*who) == "" {
		return errors.New("case consent: --who NAME is required")
	}
	if _, err := time.Parse("2006-01-02", *date); err != nil {
		return fmt.Errorf("case consent: --date %q: want YYYY-MM-DD", *date)
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := findCase(home, ref)
	if err != nil {
		return fmt.Errorf("case consent: %v", err)
	}
	cs.Consent = append(cs.Consent, laptop.Consent{Recorded: time.Now().UTC(), Date: *date, Who: *who,
		SharedReview: *shared, Supervision: *supervision, ClipsToFamily: *clips, Note: *note})
	if err := home.SaveCase(cs); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "consent recorded for case %s\n", cs.ID)
	return nil
}

func (c *cli) caseErase(args []string) error {
	ref, args := leading(args)
	fs, homeDir := c.flags("case erase")
	home, err := c.parseHome(fs, homeDir, args)
	if err != nil {
		return err
	}
	cs, err := findCase(home, ref)
	if err != nil {
		return fmt.Errorf("case erase: %v", err)
	}
	if cs.Erased != nil {
		fmt.Fprintf(c.stdout, "case %s was already erased on %s\n", cs.ID, cs.Erased.Local().Format("2006-01-02"))
		return nil
	}
	n, err := home.Erase(cs, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "case %s erased: its key is destroyed, so every copy of its footage — on the device, in this vault, in any backup — can no longer be decrypted; %d vault files removed\n", cs.ID, n)
	return nil
}

// eraseExpired runs the retention policy; every attune command calls it.
func (c *cli) eraseExpired(home *laptop.Home) {
	done, err := home.EraseExpired(time.Now())
	if err != nil {
		fmt.Fprintf(c.stderr, "attune: retention: %v\n", err)
	}
	for _, cs := range done {
		fmt.Fprintf(c.stderr, "attune: retention: case %s closed on %s was erased (its key is destroyed; no copy of its footage can be decrypted)\n", cs.ID, cs.Closed.Local().Format("2006-01-02"))
	}
}

func (c *cli) caseClose(args []string) error {
	ref, args := leading(args)
	fs, homeDir := c.flags("case close")
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	force := fs.Bool("force", false, "close even though the device holds footage of this case that was never synced (it is erased unsynced; the certificate says so)")
	retention := fs.Int("retention", laptop.DefaultRetentionDays, "days to keep the case's footage after closing, then crypto-erase it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *retention < 0 || *retention > 3650 {
		return fmt.Errorf("case close: --retention %d: give 0 to 3650 days", *retention)
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := findCase(home, ref)
	if err != nil {
		return fmt.Errorf("case close: %v", err)
	}
	if cs.Closed != nil {
		return fmt.Errorf("case close: case %s was already closed on %s", cs.ID, cs.Closed.Local().Format("2006-01-02"))
	}
	devs, err := home.Devices()
	if err != nil {
		return err
	}
	var dev *laptop.Device
	for _, d := range devs {
		if d.Case == cs.ID {
			dev = d
		}
	}
	if dev != nil {
		if *device != "" {
			dev.Addr = *device
		}
		cert, err := c.resetDevice(home, cs, dev, *force)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, cert)
	} else {
		fmt.Fprintf(c.stdout, "no paired device records to case %s: nothing to reset\n", cs.ID)
	}
	now := time.Now().UTC()
	cs.Closed, cs.RetentionDays = &now, *retention
	if *retention == 0 {
		cs.RetentionDays = -1 // erase at the next run
	}
	if err := home.SaveCase(cs); err != nil {
		return err
	}
	due, _ := cs.EraseDue()
	fmt.Fprintf(c.stdout, "case %s closed; its footage will be crypto-erased on %s (attune case erase %s does it now)\n", cs.ID, due.Local().Format("2006-01-02"), cs.ID)
	return nil
}

// resetDevice factory-resets the case's device, verifies the erasure
// certificate against the pin learnt at pairing, and keeps it with the case.
func (c *cli) resetDevice(home *laptop.Home, cs *laptop.Case, dev *laptop.Device, force bool) (string, error) {
	client, err := c.client(home, dev)
	if err != nil {
		return "", err
	}
	defer client.Close()
	// The chain of custody up to the reset.
	if _, err := home.PullCustody(c.ctx, client, dev); err != nil {
		fmt.Fprintf(c.stderr, "attune: %v\n", err)
	}
	signed, err := client.Reset(c.ctx, force)
	if errors.Is(err, link.ErrUnsynced) {
		var ids []string
		if recs, lerr := client.Recordings(c.ctx); lerr == nil {
			for _, ix := range recs {
				for _, s := range ix.Segments {
					if !s.Acked {
						ids = append(ids, ix.ID)
						break
					}
				}
			}
		}
		return "", fmt.Errorf("case close: the device still holds footage that was never synced (%s): run attune sync first, or close with --force to erase it unsynced", strings.Join(ids, ", "))
	}
	if err != nil {
		return "", fmt.Errorf("case close: %w", err)
	}
	cert, verr := custody.VerifyCertificatePin(signed, dev.Pin)
	pin := dev.Pin
	if verr != nil {
		pin = ""
	}
	name, err := home.SaveCertificate(cs, signed, pin)
	if err != nil {
		return "", err
	}
	if verr != nil {
		return "", fmt.Errorf("case close: the device was reset but its erasure certificate does not verify against the paired key (%v); kept as %s", verr, name)
	}
	if err := home.RemoveDevice(dev.ID); err != nil {
		return "", err
	}
	segs, unsynced := 0, 0
	for _, r := range cert.Recordings {
		for _, s := range r.Segments {
			segs++
			if !s.Synced {
				unsynced++
			}
		}
	}
	return fmt.Sprintf("device %s reset; erasure certificate verified and kept with the case (%s): %d recording(s), %d segment(s) erased, %d of them never synced",
		dev.ID, name, len(cert.Recordings), segs, unsynced), nil
}

func (c *cli) audit(args []string) error {
	ref, args := leading(args)
	fs, homeDir := c.flags("audit")
	htmlOut := fs.String("html", "", "also write the report as a printable HTML page to this file")
	home, err := c.parseHome(fs, homeDir, args)
	if err != nil {
		return err
	}
	cs, err := findCase(home, ref)
	if err != nil {
		return fmt.Errorf("audit: %v", err)
	}
	var text strings.Builder
	if err := home.CaseReport(cs, "text", &text); err != nil {
		return fmt.Errorf("audit: %v", err)
	}
	fmt.Fprint(c.stdout, text.String())
	if *htmlOut != "" {
		var page strings.Builder
		if err := home.CaseReport(cs, "html", &page); err != nil {
			return fmt.Errorf("audit: %v", err)
		}
		if err := os.WriteFile(*htmlOut, []byte(page.String()), 0o600); err != nil {
			return fmt.Errorf("audit: %v", err)
		}
	}
	return nil
}
