package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

const caseUsage = `usage:
  attune case new LABEL [--supervision] [--x25519] [--no-passphrase] [--device HOST:PORT]   a new case; the paired device records to it from now on
  attune case use CASE [--device HOST:PORT]       the paired device records to CASE from now on (it shows the case number)
  attune case list [--json]
  attune case consent CASE --who NAME [--date YYYY-MM-DD] [--filming] [--shared-review] [--family-copy] [--supervision] [--training] [--retention DAYS] [--note TEXT]
                                                  record consent, or amend it (the latest entry is in force)
  attune case consent show CASE                   the consent in force, its history and withdrawals
  attune case consent withdraw CASE --scope SCOPE --who NAME [--date YYYY-MM-DD]
  attune case close CASE [--device HOST:PORT] [--force] [--retention DAYS]
  attune case erase CASE [--yes]                  crypto-erase now: destroy the case key and the vault copy
  attune case retention [DAYS]                    show or set the service's retention period after close
CASE is a case label, its number as the device shows it (c042), its id or a
unique prefix of the id (4 characters at least).
Consent scopes: filming, shared_review, family_copy, supervision, training.
An export is made for one of them (attune export --for): shared_review by
default, supervision for a supervision case.`

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
	case "use":
		return c.caseUse(args[1:])
	case "retention":
		return c.caseRetention(args[1:])
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
	supervision := fs.Bool("supervision", false, "a supervision case: the practitioner's own shared reviews, exported as supervision material")
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
	opts.Type = caseType(*supervision)
	cs, err := home.StartCase(c.ctx, client, dev, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "case %s %s (%q, %s key): device %s records to it from now on and shows %s\n", cs.Number(), cs.ID, cs.Label, cs.Kind, dev.ID, cs.Number())
	return nil
}

func caseType(supervision bool) string {
	if supervision {
		return laptop.TypeSupervision
	}
	return ""
}

func (c *cli) caseUse(args []string) error {
	fs, homeDir := c.command("case use", "CASE", true)
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	home, cs, err := c.parseCase(fs, "case use", homeDir, args)
	if err != nil {
		return err
	}
	dev, err := c.device(home, *device)
	if err != nil {
		return fmt.Errorf("case use: %v", err)
	}
	client, err := c.client(home, dev)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := home.UseCase(c.ctx, client, dev, cs, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "device %s records to case %s (%q) from now on; its display shows %s\n", dev.ID, cs.Number(), cs.Label, cs.Number())
	return nil
}

func (c *cli) caseRetention(args []string) error {
	fs, homeDir := c.command("case retention", "[DAYS]", true)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Fprintf(c.stdout, "closed cases are crypto-erased %d days after close (attune case retention DAYS changes it)\n", home.RetentionDays())
		return nil
	}
	days, err := strconv.Atoi(pos[0])
	if err != nil {
		return fmt.Errorf("case retention: %q: give a number of days", pos[0])
	}
	st, err := home.Settings()
	if err != nil {
		return err
	}
	st.RetentionDays = &days
	if err := home.SaveSettings(st); err != nil {
		return fmt.Errorf("case retention: %v", err)
	}
	fmt.Fprintf(c.stdout, "cases closed from now on are crypto-erased %d days after close; cases closed before keep their date\n", days)
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
	fmt.Fprintln(tw, "NO\tCASE\tLABEL\tTYPE\tCREATED\tKEY\tCONSENT\tSTATE")
	for _, cs := range cases {
		typ := cs.Type
		if typ == "" {
			typ = laptop.TypeFamily
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cs.Number(), cs.ID, cs.Label, typ, cs.Created.Local().Format("2006-01-02"), cs.Kind, consentSummary(cs), caseState(cs))
	}
	return tw.Flush()
}

// consentSummary is the scopes in force, "-" with no consent recorded.
func consentSummary(cs *laptop.Case) string {
	if len(cs.Consent) == 0 {
		return "-"
	}
	var in []string
	for _, sc := range laptop.Scopes {
		if cs.Permits(sc) == nil {
			in = append(in, sc)
		}
	}
	if len(in) == 0 {
		return "none"
	}
	return strings.Join(in, ",")
}

func (c *cli) caseConsent(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "show":
			return c.consentShow(args[1:])
		case "withdraw":
			return c.consentWithdraw(args[1:])
		}
	}
	fs, homeDir := c.command("case consent", "CASE", true)
	who := fs.String("who", "", "who consented (required)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "when consent was given, YYYY-MM-DD (not in the future)")
	filming := fs.Bool("filming", false, "consented to being filmed")
	shared := fs.Bool("shared-review", false, "consented to a shared review of the film")
	familyCopy := fs.Bool("family-copy", false, "consented to clips being given to the family")
	clips := fs.Bool("clips", false, "same as --family-copy")
	supervision := fs.Bool("supervision", false, "consented to use in the practitioner's supervision")
	training := fs.Bool("training", false, "consented to use for training or research")
	retention := fs.Int("retention", -1, "days the footage may be kept after the case closes (default: the service's)")
	note := fs.String("note", "", "anything else agreed")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*who) == "" {
		return errors.New("case consent: --who NAME is required")
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	cs, err := home.FindCase(arg(pos, 0))
	if err != nil {
		return fmt.Errorf("case consent: %v", err)
	}
	cn := laptop.Consent{Date: *date, Who: *who, Filming: *filming, SharedReview: *shared, ClipsToFamily: *familyCopy || *clips,
		Supervision: *supervision, Training: *training, Note: *note}
	if *retention >= 0 {
		cn.RetentionDays = retention
	}
	amend := len(cs.Consent) > 0
	if err := home.GiveConsent(cs, cn, time.Now()); err != nil {
		return fmt.Errorf("case %v", err)
	}
	what := ""
	if amend {
		what = " (an amendment: it replaces the consent recorded before)"
	}
	fmt.Fprintf(c.stdout, "consent recorded for case %s (%s, %q)%s; in force: %s\n", cs.ID, cs.Number(), cs.Label, what, consentSummary(cs))
	return nil
}

func (c *cli) consentShow(args []string) error {
	fs, homeDir := c.command("case consent show", "CASE", true)
	_, cs, err := c.parseCase(fs, "case consent show", homeDir, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "case %s (%q)\n", cs.Number(), cs.Label)
	if len(cs.Consent) == 0 {
		fmt.Fprintln(c.stdout, "no consent recorded (attune case consent CASE --who NAME …)")
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tIN FORCE")
	for _, sc := range laptop.Scopes {
		state := "yes"
		if err := cs.Permits(sc); err != nil {
			state = "no: " + err.Error()
		} else if len(cs.Consent) == 0 {
			state = "no consent recorded"
		}
		fmt.Fprintf(tw, "%s\t%s\n", sc, state)
	}
	tw.Flush()
	for i, cn := range cs.Consent {
		what := "given"
		if i > 0 {
			what = "amended"
		}
		line := fmt.Sprintf("%s %s by %s (recorded %s):", what, cn.Date, cn.Who, cn.Recorded.Local().Format("2006-01-02 15:04 MST"))
		for _, sc := range laptop.Scopes {
			if cn.Grants(sc) {
				line += " " + sc
			}
		}
		if cn.RetentionDays != nil {
			line += fmt.Sprintf("; retention %d days", *cn.RetentionDays)
		}
		if cn.Note != "" {
			line += "; " + cn.Note
		}
		fmt.Fprintln(c.stdout, line)
	}
	for _, w := range cs.Withdrawals {
		fmt.Fprintf(c.stdout, "withdrawn %s by %s: %s (recorded %s)\n", w.Date, w.Who, w.Scope, w.Recorded.Local().Format("2006-01-02 15:04 MST"))
	}
	return nil
}

func (c *cli) consentWithdraw(args []string) error {
	fs, homeDir := c.command("case consent withdraw", "CASE", true)
	scope := fs.String("scope", "", "the scope withdrawn: "+strings.Join(laptop.Scopes, ", ")+" (required)")
	who := fs.String("who", "", "who withdrew consent (required)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "when consent was withdrawn, YYYY-MM-DD (not in the future)")
	home, cs, err := c.parseCase(fs, "case consent withdraw", homeDir, args)
	if err != nil {
		return err
	}
	sc := strings.ReplaceAll(*scope, "-", "_")
	if err := home.WithdrawConsent(cs, sc, *who, *date, time.Now()); err != nil {
		return fmt.Errorf("case %v", err)
	}
	fmt.Fprintf(c.stdout, "consent for %s withdrawn for case %s (%q) on %s; exports for it are refused from now on\n", sc, cs.Number(), cs.Label, *date)
	return nil
}

func (c *cli) caseErase(args []string) error {
	fs, homeDir := c.command("case erase", "CASE", true)
	yes := fs.Bool("yes", false, "do not ask for the label to be typed (for scripts)")
	home, cs, err := c.parseCase(fs, "case erase", homeDir, args)
	if err != nil {
		return err
	}
	if cs.Erased != nil {
		fmt.Fprintf(c.stdout, "case %q was already erased on %s\n", cs.Label, cs.Erased.Local().Format("2006-01-02"))
		return nil
	}
	if err := home.EraseBlocked(cs); err != nil {
		return err
	}
	exports, err := home.Exports(cs)
	if err != nil {
		return err
	}
	if !*yes {
		fmt.Fprintf(c.stderr, "erasing case %s (%q) destroys its key: its recordings can never be decrypted again.\n", cs.Number(), cs.Label)
		fmt.Fprint(c.stderr, "type the case label to confirm: ")
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if strings.TrimSpace(line) != cs.Label {
			return fmt.Errorf("case erase: not confirmed (the label typed was not %q); nothing erased (--yes skips the question in scripts)", cs.Label)
		}
	}
	n, err := home.Erase(cs, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "case %q erased: its key is destroyed on this laptop, so its footage — on the device, in this vault, in backups of the vault — can no longer be decrypted, unless a backup of the home directory still holds the key (protected by its passphrase unless made with --no-passphrase); %d vault files removed\n", cs.Label, n)
	c.listExports(exports, "erasing does NOT reach")
	return nil
}

// listExports lists the plaintext exports and family copies attune made
// of a case, which closing or erasing it does not reach.
func (c *cli) listExports(exports []laptop.ExportRecord, verb string) {
	if len(exports) == 0 {
		fmt.Fprintln(c.stdout, "attune made no plaintext exports or family copies of this case")
		return
	}
	fmt.Fprintf(c.stdout, "%s the %d plaintext export(s) and family copy file(s) attune made; delete them, and any copies given on:\n", verb, len(exports))
	for _, e := range exports {
		what := e.Recording
		if e.What != "" {
			what = e.What + " of " + e.Recording
		}
		fmt.Fprintf(c.stdout, "  %s  %s  %s (%s)\n", e.When.Local().Format("2006-01-02 15:04"), e.Purpose, e.Path, what)
	}
}

// eraseExpired runs the retention policy; every attune command calls it.
func (c *cli) eraseExpired(home *laptop.Home) {
	done, err := home.EraseExpired(time.Now())
	if err != nil {
		fmt.Fprintf(c.stderr, "attune: retention: %v\n", err)
	}
	for _, cs := range done {
		fmt.Fprintf(c.stderr, "attune: retention: case %q closed on %s was erased (its key is destroyed; no encrypted copy of its footage can be decrypted; plaintext exports are not reached)\n", cs.Label, cs.Closed.Local().Format("2006-01-02"))
	}
}

func (c *cli) caseClose(args []string) error {
	fs, homeDir := c.command("case close", "CASE", true)
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	force := fs.Bool("force", false, "close even though the device holds footage of this case that was never synced (it is erased unsynced; the certificate says so)")
	retention := fs.Int("retention", -1, "days to keep the case's footage after closing, then crypto-erase it (0: at once; default: the service's, attune case retention)")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *retention < -1 || *retention > laptop.MaxRetentionDays {
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
	if *retention < 0 {
		*retention = home.RetentionDays()
		if n := len(cs.Consent); n > 0 && cs.Consent[n-1].RetentionDays != nil {
			*retention = *cs.Consent[n-1].RetentionDays // what the family agreed to
		}
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
	if res.Cleared {
		fmt.Fprintf(c.stdout, "device %s told that case %s is closed: it shows \"noCA\" and records nothing until you choose a case (attune case use CASE)\n", res.Device.ID, cs.Number())
	} else if res.Device != nil {
		fmt.Fprintf(c.stdout, "device %s reset; erasure certificate verified and kept with the case (%s): %d recording(s), %d segment(s) erased, %d of them never synced\n",
			res.Device.ID, res.CertificateFile, res.Recordings, res.Segments, res.Unsynced)
	} else {
		fmt.Fprintf(c.stdout, "no paired device records to case %s: nothing to reset\n", cs.ID)
	}
	fmt.Fprintf(c.stdout, "case %s closed; its footage will be crypto-erased on %s (attune case erase %s does it now)\n", cs.ID, res.EraseDue.Local().Format("2006-01-02"), cs.ID)
	if exports, err := home.Exports(cs); err == nil {
		c.listExports(exports, "closing, and erasing later, does NOT reach")
	}
	return nil
}

func (c *cli) audit(args []string) error {
	fs, homeDir := c.command("audit", "CASE", true)
	htmlOut := fs.String("html", "", "also write the report as a printable HTML page to this file")
	home, cs, err := c.parseCase(fs, "audit", homeDir, args)
	if err != nil {
		return err
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

// parseCase parses a command that names one case (by label, number, id or
// id prefix): its flags, then the home and the case.
func (c *cli) parseCase(fs *flag.FlagSet, name string, homeDir *string, args []string) (*laptop.Home, *laptop.Case, error) {
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return nil, nil, err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return nil, nil, err
	}
	cs, err := home.FindCase(arg(pos, 0))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", name, err)
	}
	return home, cs, nil
}
