package review

import (
	"context"
	"encoding/json"
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

// CopyRecord is one family copy as kept with its case: what, when and
// where. It holds file names, never labels or notes.
type CopyRecord struct {
	When   time.Time `json:"when"`
	Where  string    `json:"where"`
	Format Format    `json:"format"`
	Files  []string  `json:"files"`
}

// CopiesFile lists a case's family copies, one JSON object a line.
const CopiesFile = "copies.jsonl"

// RecordCopy keeps a family copy with its case (appended to CopiesFile):
// case close and erase list the plaintext copies known to exist from it.
// This is the one call point for a copy's record.
func RecordCopy(h *laptop.Home, c *laptop.Case, rec CopyRecord) error {
	var old []byte
	if paths, _ := h.CaseFiles(c, CopiesFile); len(paths) > 0 {
		var err error
		if old, err = os.ReadFile(paths[0]); err != nil {
			return fmt.Errorf("record the copy: %v", err)
		}
	}
	line, _ := json.Marshal(rec)
	return h.SaveCaseFile(c, CopiesFile, append(append(old, line...), '\n'))
}

// Copies lists the family copies recorded with a case.
func Copies(h *laptop.Home, c *laptop.Case) ([]CopyRecord, error) {
	paths, _ := h.CaseFiles(c, CopiesFile)
	if len(paths) == 0 {
		return nil, nil
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		return nil, fmt.Errorf("copies: %v", err)
	}
	var out []CopyRecord
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r CopyRecord
		if json.Unmarshal([]byte(l), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// FamilyCopy writes the chosen clips (MP4 when ffmpeg is there, else the
// lossless AVI) and stills (the recorded JPEGs) to req.Folder with an
// index.html that plays them, and records the copy with the case.
func FamilyCopy(ctx context.Context, h *laptop.Home, c *laptop.Case, film func(rec string) (*Film, error), req CopyRequest, opts ClipOptions, now time.Time) (CopyResult, error) {
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
	format := AVI
	if opts.FFmpeg != "" || FindFFmpeg() != "" {
		format = MP4
	}
	res := CopyResult{Folder: folder, Format: format, Form: format.Describe()}
	type item struct{ File, Label, Kind string }
	var items []item
	for i, cl := range req.Clips {
		f, err := film(cl.Recording)
		if err != nil {
			return res, err
		}
		name := fmt.Sprintf("Clip %d.%s", i+1, format)
		if err := f.WriteClip(ctx, cl.In, cl.Out, format, filepath.Join(folder, name), opts); err != nil {
			return res, err
		}
		res.Files = append(res.Files, name)
		items = append(items, item{name, cl.Label, "clip"})
	}
	for i, st := range req.Stills {
		f, err := film(st.Recording)
		if err != nil {
			return res, err
		}
		if st.Frame < 0 || st.Frame >= len(f.Frames) {
			return res, fmt.Errorf("family copy: still %q: frame %d is not in the recording", st.Label, st.Frame)
		}
		name := fmt.Sprintf("Picture %d.jpg", i+1)
		if err := storage.WriteFileAtomic(filepath.Join(folder, name), f.Frames[st.Frame], 0o644); err != nil {
			return res, fmt.Errorf("family copy: %v", err)
		}
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
	if err := RecordCopy(h, c, CopyRecord{When: now.UTC(), Where: folder, Format: format, Files: res.Files}); err != nil {
		return res, err
	}
	return res, nil
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
