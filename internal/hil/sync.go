//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
)

// maxAVError is how far a click may be from its marker frame in the
// recording, beyond how far apart they were played and written: one
// frame at 30 fps.
const maxAVError = 0.033

// makeMarker writes the sync scenario's marker frame (white, unlike every
// fed frame) and returns its SHA-256.
func makeMarker(path string) (string, error) {
	img := image.NewYCbCr(image.Rect(0, 0, frameW, frameH), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = 235
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 128, 128
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 70}); err != nil {
		return "", err
	}
	h := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(h[:]), os.WriteFile(path, b.Bytes(), 0o644)
}

type probePacket struct {
	Stream int    `json:"stream_index"`
	PTS    string `json:"pts_time"`
	Size   string `json:"size"`
	Hash   string `json:"data_hash"`
}

// checkSync finds the clicks (sound onsets) and marker frames in the sync
// scenario's recording, pairs each with the click the guest played and
// the marker it wrote, and checks that the recorded offset between a click
// and its marker is the played one to within maxAVError, before and after
// the stall; and that each track's timestamps strictly increase.
func checkSync(r *result, mkv, out, marker string) error {
	js, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,size,data_hash",
		"-show_data_hash", "SHA256", "-of", "json", mkv).Output()
	if err != nil {
		return fmt.Errorf("ffprobe packets: %v", err)
	}
	var probe struct{ Packets []probePacket }
	if err := json.Unmarshal(js, &probe); err != nil {
		return err
	}
	raw := filepath.Join(out, "sync-audio.raw")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", mkv, "-map", "0:a:0", "-c", "copy", "-f", "s16le", raw).CombinedOutput(); err != nil {
		return fmt.Errorf("extract sound: %v: %s", err, b)
	}
	pcm, err := os.ReadFile(raw)
	if err != nil {
		return err
	}
	const rate = 48000 // the player's and, through the loopback, attuned's
	last := map[int]float64{}
	counts := map[int]int{}
	var markers []float64 // marker frames' stamps
	var onsets []float64  // clicks' stamps
	// quiet starts at 0: a click already sounding when the sound starts
	// is no onset (its start was not recorded).
	off, quiet := 0, 0
	firstAudio := -1.0
	for _, p := range probe.Packets {
		pts, err := strconv.ParseFloat(p.PTS, 64)
		if err != nil {
			return fmt.Errorf("packet pts %q", p.PTS)
		}
		if n := counts[p.Stream]; n > 0 && pts <= last[p.Stream] {
			return fmt.Errorf("stream %d: packet %d at %.3fs does not follow %.3fs", p.Stream, n, pts, last[p.Stream])
		}
		last[p.Stream] = pts
		counts[p.Stream]++
		size, _ := strconv.Atoi(p.Size)
		switch p.Stream {
		case 0:
			if p.Hash == "SHA256:"+marker {
				markers = append(markers, pts)
			}
		case 1:
			if firstAudio < 0 {
				firstAudio = pts
			}
			if off+size > len(pcm) {
				return fmt.Errorf("sound: %d bytes extracted, packets hold more", len(pcm))
			}
			for i := 0; i+1 < size; i += 2 {
				v := int16(binary.LittleEndian.Uint16(pcm[off+i:]))
				if v > 3000 || v < -3000 {
					if quiet >= rate/10 {
						onsets = append(onsets, pts+float64(i/2)/rate)
					}
					quiet = 0
				} else {
					quiet++
				}
			}
			off += size
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("timestamps strictly increase: %d video, %d audio packets", counts[0], counts[1]))
	var pairs [][2]float64 // played, written (guest's CLOCK_MONOTONIC)
	if b, err := json.Marshal(r.Extra["pairs"]); err == nil {
		json.Unmarshal(b, &pairs)
	}
	if len(onsets) < 3 || len(markers) < 3 || len(pairs) < 3 {
		return fmt.Errorf("%d clicks and %d marker frames recorded, %d played: too few", len(onsets), len(markers), len(pairs))
	}
	// The recording's clock minus the guest's: the shift that puts the
	// most clicks where one was played (the gaps between clicks differ,
	// so only the right pairing fits them all).
	best, bestN := 0.0, -1
	for i := range pairs {
		c := onsets[0] - pairs[i][0]
		n := 0
		for _, a := range onsets {
			if j := nearest(pairs, 0, a-c); math.Abs(pairs[j][0]+c-a) < 0.02 {
				n++
			}
		}
		if n > bestN {
			best, bestN = c, n
		}
	}
	var stall [2]float64
	if s, ok := r.Extra["stall"].([]any); ok && len(s) == 2 {
		stall[0], _ = s[0].(float64)
		stall[1], _ = s[1].(float64)
	}
	var errs []float64
	before, after := 0, 0
	var worst float64
	early := 0
	for _, v := range markers {
		j := nearest(pairs, 1, v-best)
		played, wrote := pairs[j][0], pairs[j][1]
		if played+best < firstAudio+0.1 {
			// Its click played before the sound track began (the
			// microphone starts a moment after the camera): nothing to
			// pair it with.
			early++
			continue
		}
		k := sort.SearchFloat64s(onsets, played+best-0.2)
		if k == len(onsets) || math.Abs(onsets[k]-(played+best)) > 0.2 {
			return fmt.Errorf("marker frame at %.3fs: no click recorded near it", v)
		}
		e := (onsets[k] - v) - (played - wrote)
		errs = append(errs, e)
		worst = math.Max(worst, math.Abs(e))
		if wrote < stall[0] {
			before++
		} else if wrote > stall[1] {
			after++
		}
	}
	ms := make([]string, len(errs))
	for i, e := range errs {
		ms[i] = fmt.Sprintf("%+.1f", e*1000)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("%d clicks and %d marker frames recorded (%d of %d clicks fit the played ones; %d marker(s) before the sound began, not paired); A/V error per marker (ms, recorded offset minus played offset): %v; worst %.1f ms; %d markers before the stall, %d after",
		len(onsets), len(markers), bestN, len(onsets), early, ms, worst*1000, before, after))
	if n, _ := r.Extra["overrun_lines"].(float64); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("attuned logged %.0f audio overruns", n))
	}
	if bestN < len(onsets)-1 {
		return fmt.Errorf("only %d of %d recorded clicks fit the played ones", bestN, len(onsets))
	}
	if worst > maxAVError {
		return fmt.Errorf("picture and sound %.1f ms apart (more than a frame)", worst*1000)
	}
	if before < 1 || after < 1 {
		return fmt.Errorf("markers: %d before the stall, %d after; want some on both sides", before, after)
	}
	return nil
}

// nearest is the index of the pair whose element e is nearest t.
func nearest(pairs [][2]float64, e int, t float64) int {
	best := 0
	for i := range pairs {
		if math.Abs(pairs[i][e]-t) < math.Abs(pairs[best][e]-t) {
			best = i
		}
	}
	return best
}
