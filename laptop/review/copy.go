package review

import (
	"context"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"
	"time"

	"attune.dev/attune/laptop"
	"attune.dev/attune/storage"
)

// CopyRequest is what goes on the family's copy.
type CopyRequest struct {
	Clips  []Clip
	Stills []Still
	Folder string // the folder the practitioner picked, e.g. on a USB stick
	Title  string // shown on the stick's index.html, e.g. "Our clips"
}

// CopyResult says what was written.
type CopyResult struct {
	Folder string   `json:"folder"`
	Format Format   `json:"format"`
	Form   string   `json:"form"` // Format.Describe
	Files  []string `json:"files"`
}

// FamilyCopy writes the chosen clips (MP4 when ffmpeg is there, else the
// lossless QuickTime movie, MOV, which macOS's QuickTime Player opens as
// well as VLC) and stills (the recorded JPEGs) to req.Folder with an
// index.html that plays them. It needs the case's consent for the
// family_copy scope (laptop.Case.ExportPurpose), and records each clip and
// picture written as a plaintext export of the case (laptop.Home.
// RecordExports: what, when, and where, the folder as typed, made
// absolute), so that attune audit shows it and case close and erase list
// it.
func FamilyCopy(ctx context.Context, h *laptop.Home, c *laptop.Case, film func(rec string) (*Film, error), req CopyRequest, opts ClipOptions, now time.Time) (res CopyResult, err error) {
	purpose, err := c.ExportPurpose(laptop.ScopeFamilyCopy)
	if err != nil {
		return CopyResult{}, fmt.Errorf("family copy refused, nothing was written: %v", strings.TrimPrefix(err.Error(), "export refused: "))
	}
	if strings.TrimSpace(req.Folder) == "" {
		return CopyResult{}, fmt.Errorf("family copy: choose a folder, e.g. on the USB stick")
	}
	if len(req.Clips)+len(req.Stills) == 0 {
		return CopyResult{}, fmt.Errorf("family copy: nothing chosen: tick the clips and stills for the family")
	}
	folder, err := filepath.Abs(req.Folder)
	if err != nil {
		return CopyResult{}, fmt.Errorf("family copy: %v", err)
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return CopyResult{}, fmt.Errorf("family copy: cannot write to %s: %v; is the stick plugged in and not write-protected?", folder, err)
	}
	format := MOV
	if opts.FFmpeg != "" || FindFFmpeg() != "" {
		format = MP4
	}
	res = CopyResult{Folder: folder, Format: format, Form: format.Describe()}
	type item struct{ File, Label, Kind string }
	var items []item
	var written []laptop.ExportRecord
	// Whatever was written is recorded, even if a later file fails.
	defer func() {
		if len(written) > 0 {
			if rerr := h.RecordExports(c, written, now); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	keep := func(rec, what, name string, d laptop.Digest) {
		written = append(written, laptop.ExportRecordOf(rec, purpose, what, filepath.Join(folder, name), d, now))
	}
	for i, cl := range req.Clips {
		f, err := film(cl.Recording)
		if err != nil {
			return res, err
		}
		name := fmt.Sprintf("Clip %d.%s", i+1, format)
		d, err := f.WriteClip(ctx, cl.In, cl.Out, format, filepath.Join(folder, name), opts)
		if err != nil {
			return res, err
		}
		keep(cl.Recording, f.ClipWhat(cl.In, cl.Out), name, d)
		res.Files = append(res.Files, name)
		items = append(items, item{name, cl.Label, "clip"})
	}
	for i, st := range req.Stills {
		f, err := film(st.Recording)
		if err != nil {
			return res, err
		}
		jpeg, err := f.Frame(st.Frame)
		if err != nil {
			return res, fmt.Errorf("family copy: still %q: %v", st.Label, err)
		}
		name := fmt.Sprintf("Picture %d.jpg", i+1)
		if err := storage.WriteFileAtomic(filepath.Join(folder, name), jpeg, 0o644); err != nil {
			return res, fmt.Errorf("family copy: %v", err)
		}
		keep(st.Recording, f.StillWhat(st.Frame), name, laptop.DigestOf(jpeg))
		res.Files = append(res.Files, name)
		items = append(items, item{name, st.Label, "still"})
	}
	title := req.Title
	if title == "" {
		title = "Our clips"
	}
	var page strings.Builder
	if err := familyPage.Execute(&page, map[string]any{"Title": title, "Items": items, "MP4": format == MP4}); err != nil {
		return res, err
	}
	if err := storage.WriteFileAtomic(filepath.Join(folder, "index.html"), []byte(page.String()), 0o644); err != nil {
		return res, fmt.Errorf("family copy: %v", err)
	}
	res.Files = append(res.Files, "index.html")
	return res, nil
}

// ClipWhat describes frames a to b of the film, as a copy's record says it:
// times and frame numbers in the recording.
func (f *Film) ClipWhat(a, b int) string {
	if f.First < 0 {
		return fmt.Sprintf("clip %s–%s (%d frames)", FormatTime(f.PTS[a]-f.Origin), FormatTime(f.PTS[b]-f.Origin), b-a+1)
	}
	return fmt.Sprintf("clip %s–%s (frames %d–%d)", FormatTime(f.PTS[a]-f.Origin), FormatTime(f.PTS[b]-f.Origin), f.First+a, f.First+b)
}

// StillWhat describes frame n of the film as a picture.
func (f *Film) StillWhat(n int) string {
	if f.First < 0 {
		return fmt.Sprintf("picture at %s", FormatTime(f.PTS[n]-f.Origin))
	}
	return fmt.Sprintf("picture at %s (frame %d)", FormatTime(f.PTS[n]-f.Origin), f.First+n)
}

var familyPage = template.Must(template.New("family").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font:18px system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;background:#fbf8f3;color:#222}
figure{margin:0 0 2.5em}video,img{width:100%;border-radius:8px;background:#000}figcaption{margin-top:.4em;font-size:1.1em}</style>
</head><body><h1>{{.Title}}</h1>
{{range .Items}}<figure>{{if eq .Kind "clip"}}{{if $.MP4}}<video controls preload="metadata" src="{{.File}}"></video>{{else}}<p><a href="{{.File}}">{{.File}}</a> — open it with your video player (QuickTime, Windows Media Player, VLC).</p>{{end}}{{else}}<img src="{{.File}}" alt="{{.Label}}">{{end}}
<figcaption>{{.Label}}</figcaption></figure>
{{end}}</body></html>
`))
