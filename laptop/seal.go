package laptop

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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
// audited compares the count the seal chain vouches for (the manifest's,
// for a finished recording; else the segments the device lists) with the
// count the device's audit chain recorded when it sealed the recording
// (sealed, by recording id). A difference is a problem: segments were cut
// off or added, even where the manifest is gone and the recording looks
// interrupted. "" when they agree or the chain records no count.
func (ck *chainKey) audited(ix *storage.Index, sealed map[string]int) string {
	want, ok := sealed[ix.ID]
	if !ok {
		return ""
	}
	if ck.count >= 0 {
		if ck.count != want {
			return fmt.Sprintf("the device's audit chain says the recording was sealed with %d segments, its manifest says %d; the manifest is not acknowledged and the recording stays on the device", want, ck.count)
		}
		return ""
	}
	if ix.State != storage.Recording && len(ix.Segments) != want {
		return fmt.Sprintf("the device's audit chain says the recording was sealed with %d segments, the device lists %d and no manifest says how many: segments were cut off or added", want, len(ix.Segments))
	}
	return ""
}

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

// ErrGaps is wrapped by the error of ExportRecording for a recording with
// segments missing from the vault.
var ErrGaps = errors.New("segments missing")

// A Gap is a run of segments missing from a vault recording, First to Last,
// and the part of the film they held: From and To are offsets from the
// start, about right to a segment (From is estimated from the segments
// around the gap); To is -1 when the gap runs to the end and the length
// of the recording is not known.
type Gap struct {
	First, Last int
	From, To    time.Duration
}

func (g Gap) String() string {
	segs := fmt.Sprintf("segment %d", g.First)
	if g.Last > g.First {
		segs = fmt.Sprintf("segments %d to %d", g.First, g.Last)
	}
	to := "the end"
	if g.To >= 0 {
		to = clock(g.To)
	}
	return fmt.Sprintf("%s missing (about %s to %s)", segs, clock(g.From), to)
}

func describeGaps(gaps []Gap) string {
	s := make([]string, len(gaps))
	for i, g := range gaps {
		s[i] = g.String()
	}
	return strings.Join(s, ", ")
}

// clock formats an offset as m:ss.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// Gaps lists the runs of segments of the recording missing from the
// vault: of as many segments as its finished manifest m seals, or, for a
// recording that did not finish, as its index lists.
func (vr VaultRecording) Gaps(id age.Identity, m *storage.Manifest) ([]Gap, error) {
	count := 0
	if vr.Index != nil {
		count = len(vr.Index.Segments)
	}
	if m.ChainHead != "" {
		count = m.Segments
	}
	held := func(n int) bool { return fileExists(filepath.Join(vr.Dir, storage.SegmentName(n))) }
	var gaps []Gap
	for n := 0; n < count; n++ {
		if held(n) {
			continue
		}
		g := Gap{First: n, Last: n}
		for g.Last+1 < count && !held(g.Last+1) {
			g.Last++
		}
		n = g.Last
		gaps = append(gaps, g)
	}
	for i := range gaps {
		g := &gaps[i]
		g.To = -1
		if g.Last+1 < count {
			t, err := vr.startOf(g.Last+1, id)
			if err != nil {
				return nil, err
			}
			g.To = t
		} else if m.Duration > 0 {
			g.To = time.Duration(m.Duration * float64(time.Second))
		}
		if g.First == 0 {
			continue
		}
		before, err := vr.startOf(g.First-1, id)
		if err != nil {
			return nil, err
		}
		// The segments of a recording are about equally long.
		seg := time.Second
		if g.To >= 0 {
			seg = (g.To - before) / time.Duration(g.Last-g.First+2)
		} else if g.First > 1 {
			seg = before / time.Duration(g.First-1)
		}
		g.From = before + seg
	}
	return gaps, nil
}

// startOf is the offset at which segment n starts: the Timecode of the
// Cluster its plaintext starts with (segment 0 starts at 0).
func (vr VaultRecording) startOf(n int, id age.Identity) (time.Duration, error) {
	if n == 0 {
		return 0, nil
	}
	f, err := os.Open(filepath.Join(vr.Dir, storage.SegmentName(n)))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := age.Decrypt(f, id)
	if err != nil {
		return 0, fmt.Errorf("decrypt %s: %w", storage.SegmentName(n), err)
	}
	head := make([]byte, 64)
	k, _ := io.ReadFull(r, head)
	ms, ok := clusterTimecode(head[:k])
	if !ok {
		return 0, fmt.Errorf("segment %d does not start with a Cluster", n)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// clusterTimecode reads the Timecode of the Cluster at the start of b.
func clusterTimecode(b []byte) (uint64, bool) {
	vint := func(b []byte) (val uint64, n int) {
		if len(b) == 0 || b[0] == 0 {
			return 0, 0
		}
		n = bits.LeadingZeros8(b[0]) + 1
		if len(b) < n {
			return 0, 0
		}
		val = uint64(b[0]) & (0xFF >> n)
		for _, c := range b[1:n] {
			val = val<<8 | uint64(c)
		}
		return val, n
	}
	if len(b) < 4 || !bytes.Equal(b[:4], []byte{0x1F, 0x43, 0xB6, 0x75}) {
		return 0, false
	}
	b = b[4:]
	if _, n := vint(b); n == 0 {
		return 0, false
	} else {
		b = b[n:]
	}
	for len(b) > 0 {
		idLen := bits.LeadingZeros8(b[0]) + 1
		if idLen > 4 || len(b) < idLen {
			return 0, false
		}
		eid := b[:idLen]
		size, n := vint(b[idLen:])
		if n == 0 || uint64(len(b)) < uint64(idLen+n)+size {
			return 0, false
		}
		body := b[idLen+n : idLen+n+int(size)]
		if idLen == 1 && eid[0] == 0xE7 {
			var v uint64
			for _, c := range body {
				v = v<<8 | uint64(c)
			}
			return v, true
		}
		b = b[idLen+n+int(size):]
	}
	return 0, false
}
