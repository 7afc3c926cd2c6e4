package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"attune.dev/attune/custody"
)

// State is a recording's lifecycle state as written in its index.
type State string

const (
	// Recording: segments are still being sealed.
	Recording State = "recording"
	// Complete: the recording ended and its last segment is sealed.
	Complete State = "complete"
	// Interrupted: the device lost power or the daemon was killed; every
	// sealed segment is valid, the unsealed tail is lost.
	Interrupted State = "interrupted"
)

// IndexVersion is the version of index.json this package writes.
const IndexVersion = 1

// Index is the plaintext index.json of a recording. It carries no personal
// data: an opaque id, sizes, hashes of ciphertext and the state.
type Index struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Seq orders recordings on this device (the wall clock may be unset).
	Seq   uint64 `json:"seq"`
	State State  `json:"state"`
	// RecipientKind is "x25519" or "mlkem768x25519" (post-quantum hybrid).
	RecipientKind string `json:"recipient_kind"`
	// CaseRef is the opaque case reference the laptop gave at pairing.
	CaseRef  string     `json:"case_ref,omitempty"`
	Segments []FileInfo `json:"segments"`
	Manifest *FileInfo  `json:"manifest,omitempty"`
}

// FileInfo describes one sealed file by its ciphertext.
type FileInfo struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Acked: the paired laptop verified and acknowledged this file, and
	// the device deleted it. The entry stays so the index still proves what
	// the recording was.
	Acked bool `json:"acked,omitempty"`
}

// Bytes is the total ciphertext size of the recording's segments.
func (ix *Index) Bytes() int64 {
	var n int64
	for _, s := range ix.Segments {
		n += s.Size
	}
	return n
}

// The on-disk layout of a recording (docs/FORMAT.md): the store keeps
// DATA/RecordingsDir/<id>/, and the laptop's vault copies each recording
// directory under the same file names.
const (
	// RecordingsDir is the directory under the data directory that holds
	// one directory per recording.
	RecordingsDir = "recordings"
	// IndexName is the recording's plaintext index.
	IndexName = "index.json"
	// ManifestName is the recording's sealed manifest.
	ManifestName = "manifest.age"
)

// SegmentName is the file name of segment n: 000000.age, 000001.age, …
func SegmentName(n int) string { return fmt.Sprintf("%06d.age", n) }

func readIndex(dir string) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexName))
	if err != nil {
		return nil, err
	}
	return parseIndex(b)
}

// parseIndex decodes and checks an index.json.
func parseIndex(b []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("parse index: %v", err)
	}
	if err := ix.Check(); err != nil {
		return nil, fmt.Errorf("parse index: %v", err)
	}
	return &ix, nil
}

// Check reports whether the index keeps the rules this package writes it
// by: its version, a recording id custody.ValidID accepts, a known state,
// segments named 000000.age, 000001.age, … in order, and the manifest's
// name. The laptop checks every index a device sends with it before it
// names a file after anything in it.
func (ix *Index) Check() error {
	if ix.Version != IndexVersion {
		return fmt.Errorf("unsupported version %d", ix.Version)
	}
	if !custody.ValidID(ix.ID) {
		return fmt.Errorf("recording id %q is not 16 lowercase hex digits", ix.ID)
	}
	switch ix.State {
	case Recording, Complete, Interrupted:
	default:
		return fmt.Errorf("unknown state %q", ix.State)
	}
	for i, s := range ix.Segments {
		if s.Name != SegmentName(i) || s.Size < 0 || len(s.SHA256) != 64 {
			return fmt.Errorf("bad segment entry %d", i)
		}
	}
	if m := ix.Manifest; m != nil && (m.Name != ManifestName || m.Size < 0 || len(m.SHA256) != 64) {
		return errors.New("bad manifest entry")
	}
	return nil
}

func writeIndex(dir string, ix *Index) error {
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	a, err := createAtomic(dir, IndexName)
	if err != nil {
		return err
	}
	if _, err := a.Write(append(b, '\n')); err != nil {
		a.abort()
		return err
	}
	_, _, err = a.commit()
	return err
}

// Manifest is the encrypted description of a recording: everything about it
// that is not needed to store and move it. It is sealed to the same
// recipients as the footage.
type Manifest struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	// Started is the wall time at the start; ClockTrusted says whether the
	// device clock had been set by the paired laptop when it was read.
	Started      time.Time `json:"started"`
	ClockTrusted bool      `json:"clock_trusted"`
	Device       string    `json:"device,omitempty"`
	Source       string    `json:"source"`
	Audio        string    `json:"audio"`
	Tracks       []Track   `json:"tracks"`
	Marks        []Mark    `json:"marks"`
	// Set when the recording ends.
	Ended     *time.Time `json:"ended,omitempty"`
	Duration  float64    `json:"duration_seconds,omitempty"`
	EndReason string     `json:"end_reason,omitempty"`
	Segments  int        `json:"segments,omitempty"`
	// SealKey is the recording's seal key (hex), sealed here and in
	// segment 0 only; ChainHead is the MAC of the last segment, set when
	// the recording ends, with Segments (docs/FORMAT.md, "The seal chain").
	SealKey   string `json:"seal_key,omitempty"`
	ChainHead string `json:"chain_head,omitempty"`
	// AudioOverruns counts the times sound was lost because the
	// microphone's buffer filled before it was read.
	AudioOverruns int `json:"audio_overruns,omitempty"`
}

// Track describes one stream of the recording.
type Track struct {
	Kind       string  `json:"kind"`
	Codec      string  `json:"codec"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FPS        float64 `json:"fps,omitempty"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
}

// Mark is a moment the practitioner marked, as an offset from the start.
type Mark struct {
	Offset float64 `json:"offset_seconds"`
}
