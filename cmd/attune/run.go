package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"attune.dev/attune/laptop"
	"attune.dev/attune/link"
)

const usage = `usage:
  attune pair   [--device HOST:PORT] [--code NNNNNN] [--case LABEL] [--supervision] [--x25519] [--no-passphrase] [--home DIR]
  attune sync   [--device HOST:PORT] [--json] [--home DIR]
  attune list   [--json] [--home DIR]
  attune export RECORDING-ID --out FILE.mkv [--for PURPOSE] [--marks FILE.vtt|FILE.csv] [--home DIR]
  attune case new|use|list|consent|close|erase|retention …   (attune case for details)
  attune audit CASE [--html FILE]              the chain of custody, as text and a printable page
  attune ui     [--addr 127.0.0.1:PORT] [--no-open] [--home DIR]   the review workspace in the browser
  attune clip   RECORDING-ID --from T --to T [--format mp4|mov|avi|mkv] --out FILE
  attune still  RECORDING-ID --at T --out FILE.jpg   (T is mm:ss.fff or a frame number)
  attune version

attune COMMAND --help describes a command. Flags may come before or after
the arguments. A recording or case id may be shortened to a unique prefix
of at least 4 characters.

The home directory (keys, cases, the vault) is --home, else $ATTUNE_HOME,
else the user's data directory: %LOCALAPPDATA%\Attune on Windows,
~/Library/Application Support/Attune on macOS, $XDG_DATA_HOME/attune or
~/.local/share/attune elsewhere.

Each case key is protected with a passphrase (age scrypt), asked for on the
terminal when the case is made and the first time a command needs the key;
scripts give it in $ATTUNE_PASSPHRASE or in the file $ATTUNE_PASSPHRASE_FILE
names (its first line; /dev/fd/N reads a file descriptor). --no-passphrase
keeps a new case key unprotected, in plain text in the home directory.
`

// errHelp is returned when --help was asked for and given: not a failure.
var errHelp = errors.New("help given")

// Run is attune's whole command line.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, dial: &net.Dialer{Timeout: 10 * time.Second}}
	var err error
	switch args[0] {
	case "pair":
		err = c.pair(args[1:])
	case "sync":
		err = c.sync(args[1:])
	case "list":
		err = c.list(args[1:])
	case "export":
		err = c.export(args[1:])
	case "case":
		err = c.caseCmd(args[1:])
	case "audit":
		err = c.audit(args[1:])
	case "ui":
		err = c.ui(args[1:])
	case "clip":
		err = c.clip(args[1:])
	case "still":
		err = c.still(args[1:])
	case "version", "--version":
		err = c.version(args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// version is set at build time: go build -ldflags "-X main.version=…".
var version string

func (c *cli) version(args []string) error {
	fs, _ := c.command("version", "", false)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(c.stdout, "attune %s\n", v)
	return nil
}

type cli struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	dial           link.Dialer
	pass           string // the passphrase, once given: asked once per process
}

// openHome opens the home directory and applies the retention policy.
func (c *cli) openHome(dir string) (*laptop.Home, error) {
	home, err := laptop.OpenHome(dir)
	if err != nil {
		return nil, err
	}
	c.eraseExpired(home)
	return home, nil
}

// command makes the flag set of "attune name"; synopsis names its
// positional arguments for its usage line. With home it has --home, whose
// value is the returned string.
func (c *cli) command(name, synopsis string, home bool) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse prints the usage itself, help to stdout and errors to stderr
	fs.Usage = func() {
		line := "usage: attune " + name
		if hasFlags(fs) {
			line += " [flags]"
		}
		if synopsis != "" {
			line += " " + synopsis
		}
		fmt.Fprintln(fs.Output(), line)
		if hasFlags(fs) {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
	}
	var dir *string
	if home {
		dir = fs.String("home", "", "home directory (default $ATTUNE_HOME or the user's data directory)")
	}
	return fs, dir
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args with fs as a user types them: flags before, between or
// after the positional arguments ("--" ends the flags), an unknown flag
// anywhere is an error. It returns the positional arguments, refusing more
// than max of them (max < 0: any number). --help prints the usage on
// stdout and returns errHelp.
func (c *cli) parse(fs *flag.FlagSet, args []string, max int) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(c.stdout)
			fs.Usage()
			return nil, errHelp
		}
		if err != nil {
			fs.SetOutput(c.stderr)
			fs.Usage()
			return nil, fmt.Errorf("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if max >= 0 && len(pos) > max {
		return nil, fmt.Errorf("%s: unexpected argument %q (attune %s --help)", fs.Name(), pos[max], fs.Name())
	}
	return pos, nil
}

// arg is the i-th positional argument, or "".
func arg(pos []string, i int) string {
	if i < len(pos) {
		return pos[i]
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// passphrase returns the case key passphrase: $ATTUNE_PASSPHRASE, else
// the first line of the file $ATTUNE_PASSPHRASE_FILE, else asked on the
// terminal (twice for a new key). It is asked for once per process.
func (c *cli) passphrase(prompt string) func() (string, error) {
	return func() (string, error) { return c.readPassphrase(prompt, false) }
}

func (c *cli) readPassphrase(prompt string, newKey bool) (string, error) {
	if c.pass != "" {
		return c.pass, nil
	}
	p, err := c.passphraseFrom(prompt, newKey)
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("the passphrase is empty; give one")
	}
	c.pass = p
	return p, nil
}

func (c *cli) passphraseFrom(prompt string, newKey bool) (string, error) {
	if p := os.Getenv("ATTUNE_PASSPHRASE"); p != "" {
		return p, nil
	}
	if name := os.Getenv("ATTUNE_PASSPHRASE_FILE"); name != "" {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("passphrase: %v (ATTUNE_PASSPHRASE_FILE)", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		if newKey {
			return "", errors.New("a passphrase is needed to protect the case key: set ATTUNE_PASSPHRASE or ATTUNE_PASSPHRASE_FILE, run on a terminal, or give --no-passphrase to keep the key unprotected")
		}
		return "", errors.New("a passphrase is needed: set ATTUNE_PASSPHRASE or ATTUNE_PASSPHRASE_FILE, or run on a terminal")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	p, err := ask(prompt)
	if err != nil || !newKey {
		return p, err
	}
	again, err := ask("the same passphrase again: ")
	if err != nil {
		return "", err
	}
	if again != p {
		return "", errors.New("the two passphrases differ; nothing was made, try again")
	}
	return p, nil
}

// keyFlags adds the case key flags of pair and case new; the returned
// function gives the key part of the new case's options.
func (c *cli) keyFlags(fs *flag.FlagSet) func() (laptop.CaseOptions, error) {
	x25519 := fs.Bool("x25519", false, "classic X25519 case key instead of post-quantum hybrid")
	noPass := fs.Bool("no-passphrase", false, "keep the case key unprotected, in plain text in the home directory (scripts, tests)")
	fs.Bool("protect", true, "protect the case key with a passphrase (the default; kept for old scripts)")
	return func() (laptop.CaseOptions, error) {
		o := laptop.CaseOptions{X25519: *x25519, NoPassphrase: *noPass}
		if *noPass {
			return o, nil
		}
		p, err := c.readPassphrase("passphrase for the new case key: ", true)
		o.Passphrase = p
		return o, err
	}
}

// findDevice resolves the device address: the flag, else DNS-SD.
func (c *cli) findDevice(addr string) (string, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("--device %q: want HOST:PORT, e.g. 192.168.7.1:8443 (the device on the USB link)", addr)
		}
		return addr, nil
	}
	fmt.Fprintln(c.stderr, "looking for Attune devices on the network (give --device HOST:PORT to skip)…")
	found, err := link.Browse(c.ctx, 3*time.Second)
	if err != nil {
		return "", fmt.Errorf("discovery: %v; give --device HOST:PORT", err)
	}
	switch len(found) {
	case 0:
		return "", errors.New("no device found: is it on and connected (USB cable or its network)? or give --device HOST:PORT")
	case 1:
		return found[0].Addr(), nil
	}
	var names []string
	for _, f := range found {
		names = append(names, fmt.Sprintf("%s (%s)", f.Name, f.Addr()))
	}
	return "", fmt.Errorf("several devices found: %s; choose one with --device HOST:PORT", strings.Join(names, ", "))
}

func (c *cli) pair(args []string) error {
	fs, homeDir := c.command("pair", "", true)
	device := fs.String("device", "", "device address HOST:PORT (default: discover it)")
	code := fs.String("code", "", "the 6-digit code on the device's display (asked for if not given)")
	label := fs.String("case", "", "a label for the new case (stays on this laptop; unique: to record to an existing case, pair then attune case use)")
	supervision := fs.Bool("supervision", false, "the new case is a supervision case (the practitioner's own shared reviews)")
	keyOpts := c.keyFlags(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	addr, err := c.findDevice(*device)
	if err != nil {
		return fmt.Errorf("pair: %v", err)
	}
	if *code == "" {
		fmt.Fprint(c.stderr, "code shown on the device: ")
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("pair: no code given: pass --code NNNNNN or type it when asked")
		}
		*code = strings.TrimSpace(line)
	}
	norm, err := link.NormalizeCode(*code)
	if err != nil {
		return fmt.Errorf("pair: %v", err)
	}
	opts, err := keyOpts()
	if err != nil {
		return fmt.Errorf("pair: %v", err)
	}
	if *label == "" {
		*label = "case " + time.Now().Format("2006-01-02 15:04")
	}
	opts.Label = *label
	opts.Type = caseType(*supervision)
	dev, cs, err := home.Pair(c.ctx, c.dial, addr, norm, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "paired with device %s at %s\ncase %s %s (%q, %s key) — recordings from now on are sealed to it; the device shows %s\n", dev.ID, addr, cs.Number(), cs.ID, cs.Label, cs.Kind, cs.Number())
	return nil
}

// device picks the paired device to talk to.
func (c *cli) device(home *laptop.Home, addr string) (*laptop.Device, error) {
	devs, err := home.Devices()
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, errors.New("no paired device: pair first with attune pair")
	}
	d := devs[0]
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--device %q: want HOST:PORT", addr)
		}
		d.Addr = addr
	}
	return d, nil
}

func (c *cli) sync(args []string) error {
	fs, homeDir := c.command("sync", "", true)
	device := fs.String("device", "", "device address HOST:PORT (default: where it was paired)")
	jsonOut := fs.Bool("json", false, "one JSON object per event, then the result")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	dev, err := c.device(home, *device)
	if err != nil {
		return fmt.Errorf("sync: %v", err)
	}
	cert, _, err := home.Cert()
	if err != nil {
		return err
	}
	client, err := link.NewClient(c.dial, dev.Addr, cert, dev.Pin)
	if err != nil {
		return err
	}
	defer client.Close()
	var prog progress
	switch {
	case *jsonOut:
		prog = &jsonProgress{enc: json.NewEncoder(c.stdout)}
	case isTerminal(c.stdout):
		prog = &barProgress{w: c.stdout, start: time.Now()}
	default:
		prog = &lineProgress{w: c.stdout}
	}
	res, err := home.Sync(c.ctx, client, dev, laptop.SyncOptions{Progress: prog.event, Passphrase: c.passphrase("case key passphrase: ")})
	if err == nil {
		if n, cerr := home.PullCustody(c.ctx, client, dev); cerr != nil {
			err = fmt.Errorf("sync: chain of custody: %w", cerr)
		} else if n > 0 && !*jsonOut {
			fmt.Fprintf(c.stdout, "%d erasure certificate(s) from the device kept with the case\n", n)
		}
	}
	prog.finish(res, err)
	if err != nil {
		return err
	}
	if n := res.Problems(); n > 0 {
		return fmt.Errorf("sync: %d problem(s); nothing with a problem was acknowledged, it stays on the device", n)
	}
	return nil
}

func (c *cli) list(args []string) error {
	fs, homeDir := c.command("list", "", true)
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
	recs, err := home.Recordings()
	if err != nil {
		return err
	}
	type recJSON struct {
		ID       string    `json:"id"`
		Case     string    `json:"case"`
		Label    string    `json:"case_label"`
		Date     time.Time `json:"date,omitzero"`
		Trusted  bool      `json:"date_trusted"`
		Seconds  float64   `json:"seconds"`
		State    string    `json:"state"`
		Segments int       `json:"segments"`
		Held     int       `json:"held"`
		Synced   bool      `json:"synced"`
		Erased   bool      `json:"erased"` // the case key is destroyed: no copy can be decrypted
		Marks    []float64 `json:"marks"`
	}
	type caseJSON struct {
		ID      string    `json:"id"`
		Label   string    `json:"label"`
		Created time.Time `json:"created"`
		Kind    string    `json:"recipient_kind"`
		Device  string    `json:"device,omitempty"`
		State   string    `json:"state"` // open, closed, erased
		Number  string    `json:"number"`
		Type    string    `json:"type"`
		Due     time.Time `json:"erase_due,omitzero"` // closed: when its footage is crypto-erased
	}
	out := struct {
		Cases      []caseJSON `json:"cases"`
		Recordings []recJSON  `json:"recordings"`
	}{Cases: []caseJSON{}, Recordings: []recJSON{}}
	labels := map[string]*laptop.Case{}
	for _, cs := range cases {
		labels[cs.ID] = cs
		state := "open"
		switch {
		case cs.Erased != nil:
			state = "erased"
		case cs.Closed != nil:
			state = "closed"
		}
		typ := cs.Type
		if typ == "" {
			typ = laptop.TypeFamily
		}
		due, _ := cs.EraseDue()
		out.Cases = append(out.Cases, caseJSON{cs.ID, cs.Label, cs.Created, cs.Kind, cs.Device, state, cs.Number(), typ, due})
	}
	for _, vr := range recs {
		r := recJSON{ID: vr.ID, Case: vr.Case, Marks: []float64{}}
		if cs := labels[vr.Case]; cs != nil {
			r.Label, r.Erased = cs.Label, cs.Erased != nil
			if id, err := home.Identity(cs, c.passphrase("case key passphrase: ")); err == nil {
				if m, err := vr.Manifest(id); err == nil {
					r.Date, r.Trusted, r.Seconds = m.Started, m.ClockTrusted, m.Duration
					for _, mk := range m.Marks {
						r.Marks = append(r.Marks, mk.Offset)
					}
				}
			}
		}
		if vr.Index != nil {
			r.State, r.Segments = string(vr.Index.State), len(vr.Index.Segments)
			r.Held, r.Synced = vr.Held(), vr.Synced()
			if r.Seconds == 0 {
				r.Seconds = float64(r.Segments) // about a second a segment
			}
		}
		out.Recordings = append(out.Recordings, r)
	}
	if *jsonOut {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORDING\tCASE\tDATE\tLENGTH\tSTATE\tSYNCED\tMARKS")
	for _, r := range out.Recordings {
		date := "-"
		if !r.Date.IsZero() {
			date = r.Date.Local().Format("2006-01-02 15:04")
			if !r.Trusted {
				date += "?"
			}
		}
		synced := "yes"
		if !r.Synced {
			synced = fmt.Sprintf("%d/%d", r.Held, r.Segments)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Label, date, (time.Duration(r.Seconds) * time.Second).String(), r.State, synced, len(r.Marks))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	due, err := home.Due(time.Now(), 14*24*time.Hour)
	if err != nil {
		return err
	}
	if len(due) > 0 {
		fmt.Fprintf(c.stdout, "\ncases due for crypto-erasure within 14 days (retention after close):\n")
		for _, cs := range due {
			at, _ := cs.EraseDue()
			fmt.Fprintf(c.stdout, "  %s  %s  closed %s, erased on %s\n", cs.Number(), cs.Label, cs.Closed.Local().Format("2006-01-02"), at.Local().Format("2006-01-02"))
		}
	}
	return nil
}

func (c *cli) export(args []string) error {
	fs, homeDir := c.command("export", "RECORDING-ID", true)
	out := fs.String("out", "", "output Matroska file, FILE.mkv (required)")
	marks := fs.String("marks", "", "also write the marks as WebVTT (.vtt) or CSV (.csv)")
	allowGaps := fs.Bool("allow-gaps", false, "export a recording with segments missing from the vault; the film jumps over them")
	purpose := fs.String("for", "", "what the export is for, a consent scope: shared_review (default), family_copy, supervision (a supervision case's only purpose), training")
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	id := arg(pos, 0)
	if id == "" {
		return errors.New("export: give a recording id (attune list shows them)")
	}
	if *out == "" {
		return errors.New("export: --out FILE.mkv is required")
	}
	if _, err := laptop.ContainerFor(*out); err != nil {
		return err
	}
	format := ""
	if *marks != "" {
		switch strings.ToLower(filepath.Ext(*marks)) {
		case ".vtt":
			format = "vtt"
		case ".csv":
			format = "csv"
		default:
			return fmt.Errorf("export: --marks %s: use a .vtt or .csv file name", *marks)
		}
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	vr, err := home.FindRecording(id)
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	cs, err := home.Case(vr.Case)
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	ident, err := home.Identity(cs, c.passphrase("case key passphrase: "))
	if err != nil {
		return fmt.Errorf("export: %v", err)
	}
	if len(cs.Consent) == 0 {
		fmt.Fprintf(c.stderr, "attune: no consent recorded for case %q (attune case consent): the export is recorded with the case\n", cs.Label)
	}
	written, info, m, err := home.ExportFor(c.ctx, cs, vr, ident, *out, strings.ReplaceAll(*purpose, "-", "_"), time.Now(), *allowGaps)
	if err != nil && !errors.Is(err, laptop.ErrDamaged) {
		return err
	}
	*out = written
	for _, g := range info.Gaps {
		fmt.Fprintf(c.stderr, "warning: %s: the film jumps over it\n", g)
	}
	fmt.Fprintf(c.stdout, "exported %s: %s, %d frames, %d marks as chapters → %s\n", vr.ID, info.Duration.Round(time.Millisecond), info.VideoFrames, len(m.Marks), *out)
	if format != "" {
		f, ferr := os.Create(*marks)
		if ferr != nil {
			return fmt.Errorf("export: %v", ferr)
		}
		werr := laptop.WriteMarks(f, laptop.MarksOf(m), format)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("export: marks: %v", werr)
		}
	}
	if err != nil {
		return fmt.Errorf("export: %v (the file holds everything up to the damage)", err)
	}
	return nil
}
