package review

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"

	"attune.dev/attune/laptop"
)

// DefaultPrinciples are the VIG principles a clip is tagged with, until the
// practitioner edits the list.
var DefaultPrinciples = []string{
	"being attentive",
	"encouraging initiatives",
	"receiving initiatives",
	"developing attuned interactions",
	"guiding",
	"deepening discussion",
}

// Notes is the practitioner's work on a case: clips, stills and notes. It
// is kept sealed to the case (NotesFile), never as plaintext on disk.
type Notes struct {
	Principles []string   `json:"principles"`
	Clips      []Clip     `json:"clips"` // in the order of the shared review
	Stills     []Still    `json:"stills"`
	MarkNotes  []MarkNote `json:"mark_notes"`
	// Cycles gives a recording's cycle when the practitioner changed it
	// (by default the Nth recording of a case is cycle N).
	Cycles map[string]int `json:"cycles,omitempty"`
}

// Clip is a stretch of a recording, frames In to Out inclusive.
type Clip struct {
	ID        string `json:"id"`
	Recording string `json:"recording"`
	Cycle     int    `json:"cycle"`
	In        int    `json:"in"`
	Out       int    `json:"out"`
	Label     string `json:"label"`
	Principle string `json:"principle,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Still is one recorded frame kept as a picture.
type Still struct {
	ID        string `json:"id"`
	Recording string `json:"recording"`
	Cycle     int    `json:"cycle"`
	Frame     int    `json:"frame"`
	Label     string `json:"label,omitempty"`
	Note      string `json:"note,omitempty"`
}

// MarkNote is what the practitioner saw at a mark.
type MarkNote struct {
	Recording string `json:"recording"`
	Mark      int    `json:"mark"` // rank from 0 in offset order
	Note      string `json:"note"`
}

// NotesFile is the name of the sealed notes in the case directory.
const NotesFile = "review.age"

// check refuses notes that do not hold together.
func (n *Notes) check() error {
	ids := map[string]bool{}
	for _, c := range n.Clips {
		if c.ID == "" || ids[c.ID] {
			return fmt.Errorf("notes: clip %q: missing or repeated id", c.ID)
		}
		ids[c.ID] = true
		if c.In < 0 || c.Out < c.In {
			return fmt.Errorf("notes: clip %q: its end (frame %d) is before its start (frame %d); set the out point after the in point", c.Label, c.Out, c.In)
		}
	}
	for _, s := range n.Stills {
		if s.ID == "" || ids[s.ID] {
			return fmt.Errorf("notes: still %q: missing or repeated id", s.ID)
		}
		ids[s.ID] = true
	}
	return nil
}

// LoadNotes opens a case's notes with its identity; a case without notes
// has the default principles and nothing else.
func LoadNotes(h *laptop.Home, c *laptop.Case, id age.Identity) (*Notes, error) {
	n := &Notes{Principles: append([]string(nil), DefaultPrinciples...), Clips: []Clip{}, Stills: []Still{}, MarkNotes: []MarkNote{}}
	paths, err := h.CaseFiles(c, NotesFile)
	if err != nil {
		return nil, fmt.Errorf("notes: %v", err)
	}
	if len(paths) == 0 {
		return n, nil
	}
	f, err := os.Open(paths[0])
	if err != nil {
		return nil, fmt.Errorf("notes: %v", err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		return nil, fmt.Errorf("notes of %s: %v", c.Label, err)
	}
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(n); err != nil {
		return nil, fmt.Errorf("notes of %s: damaged: %v", c.Label, err)
	}
	return n, nil
}

// SaveNotes seals a case's notes to its recipients and writes them
// atomically in the case directory.
func SaveNotes(h *laptop.Home, c *laptop.Case, n *Notes) error {
	if err := n.check(); err != nil {
		return err
	}
	rcpts, err := age.ParseRecipients(strings.NewReader(strings.Join(c.Recipients, "\n")))
	if err != nil || len(rcpts) == 0 {
		return fmt.Errorf("notes: the case's recipients: %v", err)
	}
	plain, err := json.Marshal(n)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcpts...)
	if err != nil {
		return fmt.Errorf("notes: %v", err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		return fmt.Errorf("notes: %v", err)
	}
	return h.SaveCaseFile(c, NotesFile, buf.Bytes())
}

// Search finds the clips, stills and mark notes of a case whose label or
// note holds q (case-insensitive).
func (n *Notes) Search(q string) (clips []Clip, stills []Still, marks []MarkNote) {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return nil, nil, nil
	}
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(strings.ToLower(x), q) {
				return true
			}
		}
		return false
	}
	for _, c := range n.Clips {
		if has(c.Label, c.Note, c.Principle) {
			clips = append(clips, c)
		}
	}
	for _, s := range n.Stills {
		if has(s.Label, s.Note) {
			stills = append(stills, s)
		}
	}
	for _, m := range n.MarkNotes {
		if has(m.Note) {
			marks = append(marks, m)
		}
	}
	return
}

var errNoUndo = errors.New("undo: nothing to undo")
