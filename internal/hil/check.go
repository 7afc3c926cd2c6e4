//go:build linux

package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// hostCheck checks a recording scenario's recording on the host: it
// decrypts the segments with the stock age CLI, decodes every frame with
// ffmpeg (no errors allowed) and counts them with ffprobe; for MJPEG it
// also compares each recorded frame with the frames fed in.
func hostCheck(r *result, out, identity string, fed map[[32]byte]int, marker string) error {
	if r.Extra == nil {
		return nil // not a recording scenario
	}
	id, _ := r.Extra["id"].(string)
	if id == "" {
		return nil // not a one-recording scenario
	}
	data, _ := r.Extra["data"].(string)
	secs, timed := r.Extra["seconds"].(float64) // without it, the caller checks the length
	segs, _ := filepath.Glob(filepath.Join(out, data, "recordings", id, "[0-9]*.age"))
	if len(segs) == 0 {
		return fmt.Errorf("recording %s: no sealed segments came out of the VM", id)
	}
	sort.Strings(segs)
	mkv := filepath.Join(out, r.Name+".mkv")
	f, err := os.Create(mkv)
	if err != nil {
		return err
	}
	for _, s := range segs {
		cmd := exec.Command("/usr/bin/age", "-d", "-i", identity, s)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = f, &stderr
		if err := cmd.Run(); err != nil {
			f.Close()
			return fmt.Errorf("age -d %s: %v: %s", filepath.Base(s), err, stderr.Bytes())
		}
	}
	f.Close()
	r.Notes = append(r.Notes, fmt.Sprintf("decrypted %d segments with /usr/bin/age into %s", len(segs), mkv))
	// ffprobe decodes every frame (-count_frames); at -v error anything it
	// prints is a decode or container error.
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "default=nw=1", mkv)
	cmd.Stderr = &stderr
	probe, err := cmd.Output()
	if (r.Name == "sync" || r.Name == "long") && err == nil && stderr.Len() > 0 {
		// attuned is stopped while the feeder writes on, so v4l2loopback's
		// writer laps its ring and may overwrite the buffer attuned has
		// dequeued while it copies it (a UVC driver never writes into a
		// dequeued buffer): such a frame is a prefix of a later one, cut at
		// the earlier one's length. The mjpeg scenario checks frames. The
		// long run laps it too when attuned falls behind under TCG.
		torn := strings.Count(stderr.String(), "\n")
		r.Extra["torn"] = float64(torn)
		r.Notes = append(r.Notes, fmt.Sprintf("ffprobe: %d frames torn by v4l2loopback (%s)",
			torn, strings.TrimSpace(strings.SplitN(stderr.String(), "\n", 2)[0])))
		stderr.Reset()
	}
	if err != nil || stderr.Len() > 0 {
		return fmt.Errorf("ffprobe %s: %v: %s", mkv, err, stderr.Bytes())
	}
	p := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(probe)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		p[k] = v
	}
	frames, _ := strconv.Atoi(p["nb_read_frames"])
	// The live Matroska writer leaves the duration out; the span of the
	// packets' timestamps is the recording's length.
	pts, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", mkv).Output()
	if err != nil {
		return fmt.Errorf("ffprobe packets %s: %v", mkv, err)
	}
	ts := strings.Fields(string(pts))
	var dur, last float64
	if len(ts) > 1 {
		first, _ := strconv.ParseFloat(ts[0], 64)
		last, _ = strconv.ParseFloat(ts[len(ts)-1], 64)
		dur = last - first
	}
	r.Notes = append(r.Notes, fmt.Sprintf("ffprobe: %s %sx%s, %d frames over %.2fs of timestamps, no decode errors", p["codec_name"], p["width"], p["height"], frames, dur))
	r.Extra["duration"], r.Extra["last_pts"] = dur, last
	if p["codec_name"] != "mjpeg" {
		return fmt.Errorf("codec %q, want mjpeg", p["codec_name"])
	}
	if timed && (dur < secs-1 || dur > secs+0.5) {
		return fmt.Errorf("timestamps span %.2fs, want %.1f s (-1 s, +0.5 s)", dur, secs)
	}
	min, max := minFrames[r.Name]*secs, float64(feedFPS)*(secs+1)
	if timed && (float64(frames) < min || float64(frames) > max) {
		return fmt.Errorf("%d frames in %.1f s, want %.0f–%.0f", frames, secs, min, max)
	}
	switch r.Name {
	case "mjpeg":
		return checkFed(r, mkv, out, fed)
	case "sync":
		return checkSync(r, mkv, out, marker)
	}
	return nil
}

// minFrames is the frame rate below which a recording fails, per
// scenario. Under TCG the VM is slow: vivid's 1280x720 YUYV frames are
// generated in the kernel and each is encoded to JPEG by attuned, in
// software-emulated CPU time (8 frames in 3 s were seen with the host's
// two cores busy), so the YUYV floor only proves frames keep coming.
var minFrames = map[string]float64{
	"panel": 10, // testsrc, paced in real time
	"mjpeg": 10, // fed at 30 fps; the host may be busy
	"yuyv":  2,
	"sync":  10, // fed at 30 fps, plus the marker frames
	"long":  10, // 1080p fed at 30 fps; longCheck counts every frame
}

// checkFed extracts the recorded JPEGs and checks each is byte for byte a
// fed frame, in the order fed (frames may be dropped, not reordered).
func checkFed(r *result, mkv, out string, fed map[[32]byte]int) error {
	dir := filepath.Join(out, "mjpeg-frames")
	os.MkdirAll(dir, 0o755)
	if b, err := exec.Command("ffmpeg", "-v", "error", "-i", mkv, "-map", "0:v:0", "-c", "copy", "-f", "image2", filepath.Join(dir, "%05d.jpg")).CombinedOutput(); err != nil {
		return fmt.Errorf("extract frames: %v: %s", err, b)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	sort.Strings(files)
	prev, dropped, repeated := -1, 0, 0
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		n, ok := fed[sha256.Sum256(b)]
		if !ok {
			return fmt.Errorf("recorded frame %d (%d bytes) is not byte-identical to any fed frame", i, len(b))
		}
		if prev >= 0 {
			step := (n - prev + nFrames) % nFrames
			switch {
			case step == 0:
				repeated++
			case step > nFrames/2:
				return fmt.Errorf("recorded frame %d is fed frame %d, after fed frame %d: out of order", i, n, prev)
			default:
				dropped += step - 1
			}
		}
		prev = n
	}
	if repeated > 0 {
		return fmt.Errorf("%d recorded frames repeat the frame before them", repeated)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("all %d recorded frames are byte-exact fed frames, in order (%d fed frames skipped)", len(files), dropped))
	return nil
}
