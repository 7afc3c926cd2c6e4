//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The long run (make hil-long; docs/HIL.md): 1080p MJPEG at 30 fps and
// 48 kHz sound for -long (15 minutes by default), recorded onto an ext4
// disk the host makes, then read back with debugfs.
const (
	longW, longH  = 1920, 1080
	longFrames    = 30       // distinct frames, fed in a loop, each numbered
	maxLongRSS    = 40 << 10 // kB: attuned's peak RSS (VmHWM) must stay below
	longDiskSlack = 1 << 30
)

// wantLong says whether the run is the long one, which runs alone (its
// disk is /dev/vdb, where the powercut scenario's would be).
func wantLong(only string) (bool, error) {
	if !strings.Contains(","+only+",", ",long,") {
		return false, nil
	}
	if only != "long" {
		return false, fmt.Errorf("-only %s: the long scenario runs alone", only)
	}
	return true, nil
}

// longSetup makes the long run's frames in the initramfs and its ext4
// disk, sized for length of them.
func longSetup(root, work string, length time.Duration) (string, error) {
	dir := filepath.Join(root, "hil/long")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := makeFrames(dir, longW, longH, longFrames); err != nil {
		return "", err
	}
	fs, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	var total int64
	for _, f := range fs {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	perFrame := total / int64(len(fs))
	size := int64(length.Seconds()*feedFPS)*perFrame*5/4 + longDiskSlack
	fmt.Printf("hil: long: %d frames of %dx%d, %d kB each on average; a %d MB disk for %v\n", len(fs), longW, longH, perFrame>>10, size>>20, length)
	return makeExt4(filepath.Join(work, "long.img"), size)
}

// longCheck reads the recording off the long run's disk, checks it as any
// recording (hostCheck: decrypts, decodes, its length), then that every
// frame the driver delivered was recorded: the fed frames' numbers in the
// recording skip no more than attuned says the driver dropped (gaps in
// v4l2_buffer.sequence), in order (v4l2loopback's repeats allowed); that
// the sound spans the picture with no more holes than the driver's
// overruns; and attuned's peak RSS.
func longCheck(r *result, out, disk, identity string) error {
	data, _ := r.Extra["disk_data"].(string)
	dst := filepath.Join(out, "long")
	os.MkdirAll(dst, 0o755)
	if b, err := exec.Command("debugfs", "-R", "rdump /"+data+" "+dst, disk).CombinedOutput(); err != nil {
		return fmt.Errorf("debugfs rdump (e2fsprogs): %v: %s", err, b)
	}
	r.Extra["data"] = filepath.Join("long", data)
	if err := hostCheck(r, out, identity, nil, ""); err != nil {
		return err
	}
	mkv := filepath.Join(out, r.Name+".mkv")
	seqs, err := frameNumbers(mkv)
	if err != nil {
		return err
	}
	sealed, _ := r.Extra["sealed"].(map[string]any)
	num := func(k string) int {
		s, _ := sealed[k].(string)
		n, err := strconv.Atoi(s)
		if err != nil {
			return -1
		}
		return n
	}
	frames, dropped, overruns := num("frames"), num("camera_dropped"), num("audio_overruns")
	if frames < 0 || dropped < 0 || overruns < 0 {
		return fmt.Errorf("attuned's \"recording sealed\" line lacks frames, camera_dropped or audio_overruns: %v", sealed)
	}
	// v4l2loopback delivers the last frame again (the same buffer, the
	// same sequence number) when the reader has caught up with a writer
	// that is late: a repeat, reported, not a loss. A UVC camera does not.
	gaps, repeats := 0, 0
	for i := 1; i < len(seqs); i++ {
		switch {
		case seqs[i] < seqs[i-1]:
			return fmt.Errorf("recorded frame %d is fed frame %d, after %d: out of order", i, seqs[i], seqs[i-1])
		case seqs[i] == seqs[i-1]:
			repeats++
		default:
			gaps += seqs[i] - seqs[i-1] - 1
		}
	}
	fed, _ := r.Extra["fed"].(float64)
	r.Notes = append(r.Notes, fmt.Sprintf("frames: %.0f fed; the recording holds %d, fed frames %d to %d in order (%d delivered twice by v4l2loopback when the feeder was late), skipping %d; attuned wrote %d and says the driver dropped %d before they were dequeued",
		fed, len(seqs), first(seqs), last(seqs), repeats, gaps, frames, dropped))
	if len(seqs) != frames {
		return fmt.Errorf("the recording holds %d frames, attuned says it wrote %d", len(seqs), frames)
	}
	// Every fed frame missing between the first and the last recorded one
	// must be one the driver dropped. attuned's count also holds the
	// driver's drops outside that span (before the first frame stamped
	// after the recording started, after the last one written), so it
	// may exceed the gaps, never fall short of them.
	// A frame torn by v4l2loopback's writer (it overwrote the buffer while
	// attuned copied it) was delivered and recorded, but starts as the
	// later frame that overwrote it, number and all: its own number is
	// missing. At most one gap each.
	torn, _ := r.Extra["torn"].(float64)
	if gaps > dropped+int(torn) {
		return fmt.Errorf("%d fed frames missing from the recording, %d dropped by the driver and %.0f torn: at least %d frames the driver delivered were lost", gaps, dropped, torn, gaps-dropped-int(torn))
	}
	r.Notes = append(r.Notes, fmt.Sprintf("no frame the driver delivered was lost: the %d missing are among the %d it dropped and the %.0f torn frames' own numbers (%d drops before the first or after the last recorded frame)", gaps, dropped, torn, dropped+int(torn)-gaps))
	// The sound: 48 kHz S16 mono. Each hole of more than half a second in
	// its timeline must be one the driver made (an overrun: the
	// microphone's buffer, 2 s, filled before attuned read it); with the
	// holes, it spans the picture. Smaller holes and overlaps between
	// packets (each 20 ms) are jitter in their stamps: reported.
	pk, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time,size", "-of", "csv=p=0", mkv).Output()
	if err != nil {
		return fmt.Errorf("ffprobe audio packets: %v", err)
	}
	var samples int64
	var holes, jitter int
	var holeSecs, worstJitter, firstA, end float64
	for i, l := range strings.Fields(string(pk)) {
		ptsS, sizeS, _ := strings.Cut(l, ",")
		pts, err1 := strconv.ParseFloat(ptsS, 64)
		size, err2 := strconv.ParseInt(sizeS, 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("audio packet %q", l)
		}
		if i == 0 {
			firstA = pts
		} else if gap := pts - end; gap > 0.5 {
			holes++
			holeSecs += gap
		} else if math.Abs(gap) > 0.005 {
			jitter++
			worstJitter = math.Max(worstJitter, math.Abs(gap))
		}
		samples += size / 2
		end = pts + float64(size/2)/48000
	}
	soundSecs := float64(samples) / 48000
	dur, _ := r.Extra["duration"].(float64)
	r.Notes = append(r.Notes, fmt.Sprintf("sound: %.2f s of 48 kHz samples from %.2f s to %.2f s, for %.2f s of picture; %d holes over 0.5 s (%.2f s in all), %d overruns; %d packets off their predecessor's end by 5 ms or more, at worst %.0f ms",
		soundSecs, firstA, end, dur, holes, holeSecs, overruns, jitter, worstJitter*1000))
	if holes > overruns {
		return fmt.Errorf("sound: %d holes in its timeline, %d overruns: sound attuned read was lost", holes, overruns)
	}
	if span := end - firstA; span < dur*0.99 || span > dur*1.01+1 {
		return fmt.Errorf("sound spans %.2f s for %.2f s of picture, want the same (1%%)", span, dur)
	}
	hwm, _ := r.Extra["vmhwm_kb"].(float64)
	cpu, _ := r.Extra["cpu_seconds"].(float64)
	wall, _ := r.Extra["wall_seconds"].(float64)
	r.Notes = append(r.Notes, fmt.Sprintf("attuned: peak RSS (VmHWM) %.1f MB (limit %d MB); CPU %.0f s in %.0f s, %.0f%% of one core of a TCG VM (emulated: not a Pi figure)",
		hwm/1024, maxLongRSS>>10, cpu, wall, 100*cpu/wall))
	if hwm <= 0 || hwm >= maxLongRSS {
		return fmt.Errorf("attuned's peak RSS %.1f MB, want under %d MB", hwm/1024, maxLongRSS>>10)
	}
	return nil
}

func first(s []int) int {
	if len(s) == 0 {
		return -1
	}
	return s[0]
}

func last(s []int) int {
	if len(s) == 0 {
		return -1
	}
	return s[len(s)-1]
}

// frameNumbers is the fed number ("hil-seq N" in a JPEG comment) of each
// frame of the recording, in order: ffmpeg copies the video track out as
// concatenated JPEGs, read as a stream.
func frameNumbers(mkv string) ([]int, error) {
	cmd := exec.Command("ffmpeg", "-v", "error", "-i", mkv, "-map", "0:v:0", "-c", "copy", "-f", "mjpeg", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(pipe, 1<<20)
	marker := []byte{0xFF, 0xD8, 0xFF, 0xFE}
	var seqs []int
	var window []byte
	var readErr error
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		window = append(window, b)
		if len(window) > 4 {
			window = window[1:]
		}
		if !bytes.Equal(window, marker) {
			continue
		}
		var hdr [2]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			readErr = err
			break
		}
		text := make([]byte, int(hdr[0])<<8|int(hdr[1])-2)
		if _, err := io.ReadFull(br, text); err != nil {
			readErr = err
			break
		}
		n, err := strconv.Atoi(strings.TrimPrefix(string(text), "hil-seq "))
		if err != nil {
			readErr = fmt.Errorf("frame %d: comment %q", len(seqs), text)
			break
		}
		seqs = append(seqs, n)
		window = window[:0]
	}
	io.Copy(io.Discard, br)
	if err := cmd.Wait(); err != nil || stderr.Len() > 0 {
		return nil, fmt.Errorf("ffmpeg -f mjpeg %s: %v: %s", mkv, err, stderr.Bytes())
	}
	return seqs, readErr
}
