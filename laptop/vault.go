package laptop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"attune.dev/attune/storage"
)

// segmentStream decrypts a recording's segments one after another, opening
// each only when the previous one is used up: the plaintext is never on disk
// and only one age chunk of it is in memory at a time.
type segmentStream struct {
	paths []string
	id    age.Identity
	f     *os.File
	r     io.Reader
}

func (s *segmentStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			if len(s.paths) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(s.paths[0])
			if err != nil {
				return 0, err
			}
			r, err := age.Decrypt(f, s.id)
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("decrypt %s: %w", filepath.Base(s.paths[0]), err)
			}
			s.paths, s.f, s.r = s.paths[1:], f, r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.f.Close()
			s.f, s.r = nil, nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *segmentStream) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// Stream returns the decrypted stream of a vault recording: its segments
// in order, as held (a gap where a segment is missing).
func (vr VaultRecording) Stream(id age.Identity) io.ReadCloser {
	var paths []string
	if vr.Index != nil {
		for n := range vr.Index.Segments {
			p := filepath.Join(vr.Dir, storage.SegmentName(n))
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
			}
		}
	}
	return &segmentStream{paths: paths, id: id}
}

// Held counts the recording's segments the vault holds.
func (vr VaultRecording) Held() int {
	n := 0
	if vr.Index != nil {
		for i := range vr.Index.Segments {
			if _, err := os.Stat(filepath.Join(vr.Dir, storage.SegmentName(i))); err == nil {
				n++
			}
		}
	}
	return n
}

// Synced reports whether the vault holds the whole recording: it has ended
// on the device, and every segment and the final manifest are here.
func (vr VaultRecording) Synced() bool {
	if vr.Index == nil || vr.Index.State == storage.Recording || vr.Held() != len(vr.Index.Segments) {
		return false
	}
	_, err := os.Stat(filepath.Join(vr.Dir, storage.ManifestName))
	return err == nil
}

// Manifest decrypts the recording's manifest.
func (vr VaultRecording) Manifest(id age.Identity) (*storage.Manifest, error) {
	f, err := os.Open(filepath.Join(vr.Dir, storage.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", vr.ID, err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", vr.ID, err)
	}
	var m storage.Manifest
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %v", vr.ID, err)
	}
	return &m, nil
}

// MarksOf converts a manifest's marks.
func MarksOf(m *storage.Manifest) []Mark {
	var out []Mark
	for _, mk := range m.Marks {
		out = append(out, Mark{Offset: time.Duration(mk.Offset * float64(time.Second))})
	}
	return out
}

// Container is a file format a recording is exported in.
type Container string

// Matroska is the container ExportRecording writes.
const Matroska Container = "matroska"

// ContainerFor picks the container of an export file from its name's
// extension: .mkv or .mka is Matroska; any other name is refused, with an
// error that says what to use.
func ContainerFor(path string) (Container, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".mkv", ".mka":
		return Matroska, nil
	case "":
		return "", fmt.Errorf("export: %s: name the file FILE.mkv (attune exports Matroska, which any player opens)", path)
	}
	return "", fmt.Errorf("export: %s: attune exports Matroska only (%s is not supported): name the file %s", path, ext, strings.TrimSuffix(path, ext)+".mkv")
}

// ExportRecording decrypts a vault recording into a finalized file at path
// in the container its name asks for (see ContainerFor), written under a
// temporary name and renamed when complete.
func (h *Home) ExportRecording(ctx context.Context, vr VaultRecording, id age.Identity, path string) (ExportInfo, *storage.Manifest, error) {
	return h.exportRecording(ctx, vr, id, path, "")
}

// exportRecording is ExportRecording with a Matroska title.
func (h *Home) exportRecording(ctx context.Context, vr VaultRecording, id age.Identity, path, title string) (ExportInfo, *storage.Manifest, error) {
	if _, err := ContainerFor(path); err != nil {
		return ExportInfo{}, nil, err
	}
	m, err := vr.Manifest(id)
	if err != nil {
		return ExportInfo{}, nil, err
	}
	tmp := path + ".part"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return ExportInfo{}, m, fmt.Errorf("export: %v", err)
	}
	stream := vr.Stream(id)
	defer stream.Close()
	opts := ExportOptions{Title: title}
	if m.ClockTrusted {
		opts.Date = m.Started
	}
	info, err := Export(ctx, stream, MarksOf(m), out, opts)
	if err != nil && !errors.Is(err, ErrDamaged) {
		out.Close()
		os.Remove(tmp)
		return info, m, fmt.Errorf("export %s: %w", vr.ID, err)
	}
	if serr := out.Sync(); serr != nil {
		err = serr
	}
	out.Close()
	if rerr := os.Rename(tmp, path); rerr != nil {
		return info, m, fmt.Errorf("export: %v", rerr)
	}
	return info, m, err
}
