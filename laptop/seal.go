package laptop

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"filippo.io/age"

	"attune.dev/attune/storage"
)

// chainKey is what a recording's seals are checked with (docs/FORMAT.md,
// "The seal chain"): the recording's seal key and, from the manifest of a
// finished recording, its segment count and chain head.
type chainKey struct {
	key     []byte
	count   int // -1: not known (a recording still running, or interrupted)
	head    [32]byte
	problem string // why there is no key, or what is wrong with the manifest
}

// manifestChain reads the key, count and head from a decrypted manifest.
func manifestChain(m *storage.Manifest, recID string) *chainKey {
	ck := &chainKey{count: -1}
	if m.ID != recID {
		ck.problem = fmt.Sprintf("manifest: it belongs to recording %s, not this one (swapped)", m.ID)
		return ck
	}
	key, err := m.SealKeyBytes()
	if err != nil {
		ck.problem = "manifest: " + err.Error()
		return ck
	}
	ck.key = key
	if m.ChainHead != "" {
		h, err := hex.DecodeString(m.ChainHead)
		if err != nil || len(h) != len(ck.head) {
			ck.problem = "manifest: its chain head is malformed"
			return ck
		}
		copy(ck.head[:], h)
		ck.count = m.Segments
	}
	return ck
}

// chainKey finds the key of a recording being synced: in the vault's
// manifest (fetched just before), else in segment 0 — the vault's, or the
// device's, fetched first and returned to be queued before the others.
func (st *syncState) chainKey(ctx context.Context, dir string, ix *storage.Index, id age.Identity) (*chainKey, *download, error) {
	vr := VaultRecording{ID: ix.ID, Dir: dir}
	if m, err := vr.Manifest(id); err == nil {
		ck := manifestChain(m, ix.ID)
		if ck.key != nil || ck.problem != "" {
			return ck, nil, nil
		}
	}
	ck := &chainKey{count: -1}
	if path := filepath.Join(dir, storage.SegmentName(0)); fileExists(path) {
		if s, err := readSeal(path, id); err == nil {
			ck.key = append([]byte(nil), s.Key[:]...)
			return ck, nil, nil
		}
	}
	if len(ix.Segments) > 0 && !ix.Segments[0].Acked {
		d, _, err := st.fetch(ctx, dir, ix.ID, 0, ix.Segments[0], id)
		if err != nil {
			return nil, nil, err
		}
		if d != nil && d.checked && d.problem == "" && d.sealErr == nil {
			ck.key = append([]byte(nil), d.seal.Key[:]...)
		}
		if d != nil {
			if ck.key == nil {
				ck.problem = "no manifest and segment 0 does not give the recording's seal key: nothing can be verified; left on the device"
			}
			return ck, d, nil
		}
	}
	ck.problem = "no manifest and no segment 0: the recording's seal key is unknown, nothing can be verified; left on the device"
	return ck, nil, nil
}

// verify checks one segment's seal; it returns a problem, or "".
func (ck *chainKey) verify(s *storage.Seal, sealErr error, recID string, n int) string {
	switch {
	case ck.key == nil:
		return "its seal cannot be checked without the recording's seal key"
	case sealErr != nil:
		return "it carries no seal (not made by an Attune device, or cut short)"
	}
	if err := s.Verify(ck.key, recID, n); err != nil {
		return err.Error()
	}
	return ""
}

// chain checks what single segments cannot show: that each segment follows
// the one before it (where both were checked in this pass), and for a
// finished recording the count and the chain head of its manifest.
func (ck *chainKey) chain(ix *storage.Index, seals map[int]*storage.Seal) []string {
	var out []string
	ns := make([]int, 0, len(seals))
	for n := range seals {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		if p, ok := seals[n-1]; ok {
			if err := seals[n].Link(p); err != nil {
				out = append(out, err.Error()+"; left on the device")
			}
		}
	}
	if ck.count < 0 {
		return out
	}
	if len(ix.Segments) != ck.count {
		out = append(out, fmt.Sprintf("the manifest says the recording has %d segments, the device lists %d: segments were removed, added or renumbered; the recording stays on the device", ck.count, len(ix.Segments)))
	} else if s, ok := seals[ck.count-1]; ok && s.MAC != ck.head {
		out = append(out, fmt.Sprintf("segment %d is not the end of the recording its manifest seals; the recording stays on the device", ck.count-1))
	}
	return out
}

// readSeal decrypts a segment file and reads its seal.
func readSeal(path string, id age.Identity) (storage.Seal, error) {
	f, err := os.Open(path)
	if err != nil {
		return storage.Seal{}, err
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		return storage.Seal{}, err
	}
	sr := storage.NewSealReader()
	if _, err := io.Copy(sr, r); err != nil {
		return storage.Seal{}, err
	}
	return sr.Seal()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, os.ErrNotExist)
}
