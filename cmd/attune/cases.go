package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

const caseUsage = `usage:
  attune case new LABEL [--x25519] [--no-passphrase] [--device HOST:PORT]   a new case; the paired device records to it from now on
  attune case list [--json]
  attune case consent CASE --who NAME [--date YYYY-MM-DD] [--shared-review] [--supervision] [--clips] [--note TEXT]
  attune case close CASE [--device HOST:PORT] [--force] [--retention DAYS]
  attune case erase CASE                                               crypto-erase now: destroy the case key and the vault copy
CASE is a case id, a unique prefix of it (4 characters at least) or its label.`

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
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(c.stdout, caseUsage)
		return nil
	}
	fmt.Fprintln(c.stderr, caseUsage)
	return fmt.Errorf("case: unknown subcommand %q", args[0])
}

func (c *cli) caseNew(args []string) error {
	fs, homeDir := c.command("case new", "LABEL", true)
	keyOpts := c.keyFlags(fs)
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	pos, err := c.parse(fs, args, -1)
	if err != nil {
		return err
	}
	label := strings.Join(pos, " ")
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	dev, err := c.device(home, *device)
	if err != nil {
		return fmt.Errorf("case new: %v", err)
	}
	opts, err := keyOpts()
	if err != nil {
		return fmt.Errorf("case new: %v", err)
	}
	opts.Label = label
	client, err := c.client(home, dev)
	if err != nil {
		return err
	}
	defer client.Close()
	cs, err := home.StartCase(c.ctx, client, dev, opts)
	if err != nil {
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
	fs, homeDir := c.command("case list", "", true)
	jsonOut := fs.Bool("json", false, "JSON output")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
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
	fs, homeDir := c.command("case consent", "CASE", true)
	who := fs.String("who", "", "who consented (required)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "when consent was given, YYYY-MM-DD")
	shared := fs.Bool("shared-review", false, "consented to a shared review of the film")
	supervision := fs.Bool("supervision", false, "consented to use in the practitioner's supervision")
	clips := fs.Bool("clips", false, "consented to clips being given to the family")
	note := fs.String("note", "", "anything else agreed")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
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
	cs, err := home.FindCase(arg(pos, 0))
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
	fs, homeDir := c.command("case erase", "CASE", true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := home.FindCase(arg(pos, 0))
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
	fmt.Fprintf(c.stdout, "case %s erased: its key is destroyed on this laptop, so its footage — on the device, in this vault, in backups of the vault — can no longer be decrypted, unless a backup of the home directory still holds the key (protected by its passphrase unless made with --no-passphrase); exports are not erased; %d vault files removed\n", cs.ID, n)
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
	fs, homeDir := c.command("case close", "CASE", true)
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	force := fs.Bool("force", false, "close even though the device holds footage of this case that was never synced (it is erased unsynced; the certificate says so)")
	retention := fs.Int("retention", laptop.DefaultRetentionDays, "days to keep the case's footage after closing, then crypto-erase it (0: at once)")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *retention < 0 || *retention > laptop.MaxRetentionDays {
		return fmt.Errorf("case close: --retention %d: give 0 to %d days", *retention, laptop.MaxRetentionDays)
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := home.FindCase(arg(pos, 0))
	if err != nil {
		return fmt.Errorf("case close: %v", err)
	}
	connect := func(dev *laptop.Device) (laptop.ResetAPI, error) {
		client, err := c.client(home, dev)
		if err != nil {
			return nil, err
		}
		return client, nil
	}
	res, err := home.CloseCase(c.ctx, cs, connect, laptop.CloseOptions{RetentionDays: *retention, Force: *force, Addr: *device})
	if res.CustodyErr != nil {
		fmt.Fprintf(c.stderr, "attune: %v\n", res.CustodyErr)
	}
	if err != nil {
		return err
	}
	if res.Device != nil {
		fmt.Fprintf(c.stdout, "device %s reset; erasure certificate verified and kept with the case (%s): %d recording(s), %d segment(s) erased, %d of them never synced\n",
			res.Device.ID, res.CertificateFile, res.Recordings, res.Segments, res.Unsynced)
	} else {
		fmt.Fprintf(c.stdout, "no paired device records to case %s: nothing to reset\n", cs.ID)
	}
	fmt.Fprintf(c.stdout, "case %s closed; its footage will be crypto-erased on %s (attune case erase %s does it now)\n", cs.ID, res.EraseDue.Local().Format("2006-01-02"), cs.ID)
	return nil
}

func (c *cli) audit(args []string) error {
	fs, homeDir := c.command("audit", "CASE", true)
	htmlOut := fs.String("html", "", "also write the report as a printable HTML page to this file")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := home.FindCase(arg(pos, 0))
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
