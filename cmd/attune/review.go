package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"filippo.io/age"

	"attune.dev/attune/laptop"
	"attune.dev/attune/laptop/review"
	"attune.dev/attune/storage"
)

// openCommand is the command that opens url in the default browser on goos.
func openCommand(goos, url string) []string {
	switch goos {
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler", url}
	case "darwin":
		return []string{"open", url}
	}
	return []string{"xdg-open", url}
}

func (c *cli) ui(args []string) error {
	fs, homeDir := c.command("ui", "", true)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	noOpen := fs.Bool("no-open", false, "print the address instead of opening the browser")
	device := fs.String("device", "", "the device's HOST:PORT when it is not where it was paired")
	folder := fs.String("copy-folder", "", "the folder the family copy suggests")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	home, err := c.openHome(*homeDir)
	if err != nil {
		return err
	}
	l, err := review.Listen(*addr)
	if err != nil {
		return err
	}
	srv := review.NewServer(home, review.Options{Dial: c.dial, DeviceAddr: *device, CopyFolder: *folder})
	url := srv.URL(l.Addr())
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	if *noOpen {
		fmt.Fprintln(c.stdout, url)
	} else {
		argv := openCommand(runtime.GOOS, url)
		if err := exec.Command(argv[0], argv[1:]...).Start(); err != nil {
			fmt.Fprintf(c.stdout, "open this address in your browser: %s\n", url)
		} else {
			fmt.Fprintln(c.stdout, "the workspace is open in your browser; press Ctrl+C here when you are done")
		}
	}
	select {
	case <-c.ctx.Done():
	case err := <-errc:
		return fmt.Errorf("ui: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.Shutdown(ctx)
	return nil
}

// cut is a clip or a still being made: the recording, its case and key,
// and the consent scope the copy is for.
type cut struct {
	home    *laptop.Home
	vr      laptop.VaultRecording
	cs      *laptop.Case
	id      age.Identity
	purpose string
}

// openCut finds the recording ref, checks that its case's consent permits
// a copy for purpose (a consent scope; "" is shared_review), and opens the
// case key.
func (c *cli) openCut(cmd, homeDir, ref, purpose string) (*cut, error) {
	if ref == "" {
		return nil, fmt.Errorf("%s: give a recording id (attune list shows them)", cmd)
	}
	home, err := c.openHome(homeDir)
	if err != nil {
		return nil, err
	}
	vr, err := home.FindRecording(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	cs, err := home.Case(vr.Case)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	purpose, err = cs.ExportPurpose(strings.ReplaceAll(purpose, "-", "_"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	id, err := home.Identity(cs, c.passphrase("case key passphrase: "))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	return &cut{home: home, vr: vr, cs: cs, id: id, purpose: purpose}, nil
}

// record records the file written at path, of digest d, with the case:
// case close and erase list it, attune audit shows it.
func (k *cut) record(cmd, what, path string, d laptop.Digest) error {
	now := time.Now()
	e := laptop.ExportRecordOf(k.vr.ID, k.purpose, what, path, d, now)
	if err := k.home.RecordExports(k.cs, []laptop.ExportRecord{e}, now); err != nil {
		return fmt.Errorf("%s: %s was written but not recorded with the case: %v", cmd, path, err)
	}
	return nil
}

func points(flags ...string) ([]review.Point, error) {
	var out []review.Point
	for i := 0; i < len(flags); i += 2 {
		p, err := review.ParsePoint(flags[i+1])
		if err != nil {
			return nil, fmt.Errorf("%s: %v", flags[i], err)
		}
		out = append(out, p)
	}
	return out, nil
}

const forUsage = "what the copy is for, a consent scope: shared_review (default), family_copy, supervision (a supervision case's only purpose), training"

func (c *cli) clip(args []string) error {
	fs, homeDir := c.command("clip", "RECORDING-ID", true)
	from := fs.String("from", "", "first frame: mm:ss.fff or a frame number (required)")
	to := fs.String("to", "", "last frame, included: mm:ss.fff or a frame number (required)")
	format := fs.String("format", "", "mp4 (needs ffmpeg), mov, avi or mkv (default: from --out's extension)")
	out := fs.String("out", "", "output file (required)")
	purpose := fs.String("for", "", forUsage)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *out == "" || *from == "" || *to == "" {
		return errors.New("clip: give --from, --to and --out (attune clip --help)")
	}
	fm := *format
	if fm == "" {
		fm = filepath.Ext(*out)
	}
	f0, err := review.ParseFormat(fm)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	pts, err := points("--from", *from, "--to", *to)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	k, err := c.openCut("clip", *homeDir, arg(pos, 0), *purpose)
	if err != nil {
		return err
	}
	film, d, err := review.WriteSpan(c.ctx, k.vr, k.id, pts[0], pts[1], f0, *out, review.ClipOptions{})
	if err != nil {
		return err
	}
	n := film.Len() - 1
	if err := k.record("clip", film.ClipWhat(0, n), *out, d); err != nil {
		return err
	}
	frames := ""
	if film.First >= 0 {
		frames = fmt.Sprintf("frames %d to %d, ", film.First, film.First+n)
	}
	fmt.Fprintf(c.stdout, "clip: %s to %s (%s%d frames) → %s, %s\n", review.FormatTime(film.PTS[0]-film.Origin), review.FormatTime(film.PTS[n]-film.Origin),
		frames, n+1, *out, f0.Describe())
	return nil
}

func (c *cli) still(args []string) error {
	fs, homeDir := c.command("still", "RECORDING-ID", true)
	at := fs.String("at", "", "the frame: mm:ss.fff or a frame number (required)")
	out := fs.String("out", "", "output FILE.jpg (required)")
	purpose := fs.String("for", "", forUsage)
	pos, err := c.parse(fs, args, 1)
	if err != nil {
		return err
	}
	if *out == "" || *at == "" {
		return errors.New("still: give --at and --out FILE.jpg (attune still --help)")
	}
	if ext := strings.ToLower(filepath.Ext(*out)); ext != ".jpg" && ext != ".jpeg" {
		return fmt.Errorf("still: --out %s: name it FILE.jpg (a still is the recorded JPEG)", *out)
	}
	pts, err := points("--at", *at)
	if err != nil {
		return fmt.Errorf("still: %v", err)
	}
	k, err := c.openCut("still", *homeDir, arg(pos, 0), *purpose)
	if err != nil {
		return err
	}
	film, err := review.LoadSpan(c.ctx, k.vr, k.id, pts[0], pts[0])
	if err != nil {
		return fmt.Errorf("still: %v", err)
	}
	jpeg, err := film.Frame(0)
	if err != nil {
		return fmt.Errorf("still: %v", err)
	}
	if err := storage.WriteFileAtomic(*out, jpeg, 0o644); err != nil {
		return fmt.Errorf("still: %v", err)
	}
	if err := k.record("still", film.StillWhat(0), *out, laptop.DigestOf(jpeg)); err != nil {
		return err
	}
	frame := ""
	if film.First >= 0 {
		frame = fmt.Sprintf(" (frame %d)", film.First)
	}
	fmt.Fprintf(c.stdout, "still: %s%s → %s\n", review.FormatTime(film.PTS[0]-film.Origin), frame, *out)
	return nil
}
