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

// openFilm decrypts a vault recording into memory for clip and still.
func (c *cli) openFilm(cmd, homeDir, ref string) (*review.Film, error) {
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
	id, err := home.Identity(cs, c.passphrase("case key passphrase: "))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	f, err := review.LoadFilm(c.ctx, vr, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", cmd, err)
	}
	return f, nil
}

func point(f *review.Film, flag, s string) (int, error) {
	p, err := review.ParsePoint(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", flag, err)
	}
	n, err := f.Resolve(p)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", flag, err)
	}
	return n, nil
}

func (c *cli) clip(args []string) error {
	fs, homeDir := c.command("clip", "RECORDING-ID", true)
	from := fs.String("from", "", "first frame: mm:ss.fff or a frame number (required)")
	to := fs.String("to", "", "last frame, included: mm:ss.fff or a frame number (required)")
	format := fs.String("format", "", "mp4 (needs ffmpeg), mov, avi or mkv (default: from --out's extension)")
	out := fs.String("out", "", "output file (required)")
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
	film, err := c.openFilm("clip", *homeDir, arg(pos, 0))
	if err != nil {
		return err
	}
	a, err := point(film, "--from", *from)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	b, err := point(film, "--to", *to)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	if err := film.WriteClip(c.ctx, a, b, f0, *out, review.ClipOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "clip: frames %d to %d (%s to %s, %d frames) → %s, %s\n", a, b,
		review.FormatTime(film.PTS[a]-film.PTS[0]), review.FormatTime(film.PTS[b]-film.PTS[0]), b-a+1, *out, f0.Describe())
	return nil
}

func (c *cli) still(args []string) error {
	fs, homeDir := c.command("still", "RECORDING-ID", true)
	at := fs.String("at", "", "the frame: mm:ss.fff or a frame number (required)")
	out := fs.String("out", "", "output FILE.jpg (required)")
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
	film, err := c.openFilm("still", *homeDir, arg(pos, 0))
	if err != nil {
		return err
	}
	n, err := point(film, "--at", *at)
	if err != nil {
		return fmt.Errorf("still: %v", err)
	}
	if err := storage.WriteFileAtomic(*out, film.Frames[n], 0o644); err != nil {
		return fmt.Errorf("still: %v", err)
	}
	fmt.Fprintf(c.stdout, "still: frame %d (%s) → %s\n", n, review.FormatTime(film.PTS[n]-film.PTS[0]), *out)
	return nil
}
