//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// powerCutAfter is, per power-cut boot, how long after the guest says the
// recording started the host kills qemu. Not whole seconds, so the cut
// falls at different points of a segment.
var powerCutAfter = []time.Duration{4300 * time.Millisecond, 5700 * time.Millisecond}

// maxLoss is the most a power cut may lose, in seconds: the segment being
// written (1 s) and the time to seal the one before (encrypt, fsync the
// file and the directory: slow under TCG on a busy host).
const maxLoss = 1.5

// cutSeconds is what powerCuts measured: seconds from the guest's "recording
// started" to the kill, per disk.
var cutSeconds []float64

// powerCuts makes one ext4 disk image per power cut (mkfs.ext4 on the
// host), boots the VM recording onto it (HIL_POWERCUT=cut) and kills qemu
// mid-recording: no shutdown, no sync, the guest's page cache lost. It
// returns the disks for the main boot, where the powercut scenario
// recovers them. It does nothing unless the powercut scenario is to run.
func powerCuts(v vm, work, only string) ([]string, error) {
	if only != "" && !strings.Contains(","+only+",", ",powercut,") {
		return nil, nil
	}
	var disks []string
	cutSeconds = nil
	for i, after := range powerCutAfter {
		disk, err := makeExt4(filepath.Join(work, fmt.Sprintf("powercut-%d.img", i+1)), 256<<20)
		if err != nil {
			return nil, err
		}
		secs, err := bootAndCut(v, disk, after)
		if err != nil {
			return nil, fmt.Errorf("power cut %d: %w", i+1, err)
		}
		fmt.Printf("hil: power cut %d: qemu killed %.2fs after the recording started\n", i+1, secs)
		disks = append(disks, disk)
		cutSeconds = append(cutSeconds, secs)
	}
	return disks, nil
}

// makeExt4 makes a sparse disk image of size bytes with an ext4 file
// system (mkfs.ext4's defaults: data=ordered) and returns its path.
func makeExt4(disk string, size int64) (string, error) {
	os.Remove(disk)
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(disk, size); err != nil {
		return "", err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", disk).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mkfs.ext4 %s (e2fsprogs): %v: %s", disk, err, out)
	}
	return disk, nil
}

// bootAndCut boots the VM recording onto disk and kills qemu after the
// guest's "recording started"; it returns the seconds between the two.
func bootAndCut(v vm, disk string, after time.Duration) (float64, error) {
	cmd := v.command("HIL_ONLY=powercut HIL_POWERCUT=cut", []string{disk})
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("qemu: %w", err)
	}
	limit := time.AfterFunc(v.arch.timeout(2*time.Minute), func() { cmd.Process.Kill() })
	defer limit.Stop()
	var started, killed time.Time
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Println("vm-cut| " + line)
		if started.IsZero() && strings.Contains(line, "hil-powercut: recording started") {
			started = time.Now()
			time.AfterFunc(after, func() {
				killed = time.Now()
				cmd.Process.Kill() // SIGKILL: the power cut
			})
		}
	}
	cmd.Wait()
	if started.IsZero() || killed.IsZero() {
		return 0, fmt.Errorf("the guest never said the recording started, or qemu ended before the cut")
	}
	return killed.Sub(started).Seconds(), nil
}

// faultCheck checks on the host what hostCheck does not: the recording
// the unplug scenario's camera loss ended (decrypts, decodes, its manifest
// says it ended in an error), and each power cut's recovered recording
// (decrypts, decodes, and lost at most a segment and a half).
func faultCheck(r *result, out, identity string, fed map[[32]byte]int) error {
	switch r.Name {
	case "unplug":
		// Both recordings decrypt and decode (hostCheck, untimed: vivid's
		// start under TCG takes up to a second or two) and hold at least
		// a second; the first no more than the time from the red LED to
		// the unbind.
		if dur, _ := r.Extra["duration"].(float64); dur < 1 {
			return fmt.Errorf("the recording after the camera came back holds %.2fs, want at least 1 s", dur)
		}
		id, _ := r.Extra["first"].(string)
		secs, _ := r.Extra["first_seconds"].(float64)
		data, _ := r.Extra["data"].(string)
		sub := result{Name: "unplug-first", Extra: map[string]any{"id": id, "data": data}}
		if err := hostCheck(&sub, out, identity, fed, ""); err != nil {
			return fmt.Errorf("the unplugged recording %s: %w", id, err)
		}
		r.Notes = append(r.Notes, sub.Notes...)
		if dur, _ := sub.Extra["duration"].(float64); dur < 1 || dur > secs {
			return fmt.Errorf("the unplugged recording holds %.2fs, want 1 s to %.2fs (the red LED to the unbind)", dur, secs)
		}
		m, err := manifest(out, data, id, identity)
		if err != nil {
			return err
		}
		if m.EndReason != "error" {
			return fmt.Errorf("the unplugged recording's manifest says it ended %q, want error", m.EndReason)
		}
		r.Notes = append(r.Notes, fmt.Sprintf("the unplugged recording's manifest: end_reason %q after %.2fs (%.2fs from the red LED to the unbind)", m.EndReason, m.Duration, secs))
	case "powercut":
		cuts, _ := r.Extra["cuts"].([]any)
		if len(cuts) != len(cutSeconds) {
			return fmt.Errorf("%d recovered recordings for %d power cuts", len(cuts), len(cutSeconds))
		}
		for i, c := range cuts {
			c, _ := c.(map[string]any)
			id, _ := c["id"].(string)
			data, _ := c["data"].(string)
			cut := cutSeconds[i]
			sub := result{Name: fmt.Sprintf("powercut-%d", i+1), Extra: map[string]any{"id": id, "data": data}}
			if err := hostCheck(&sub, out, identity, fed, ""); err != nil {
				return fmt.Errorf("cut %d, recording %s: %w", i+1, id, err)
			}
			r.Notes = append(r.Notes, sub.Notes...)
			// The recording's timeline starts when it started: what it
			// lost is the time from its last recovered frame to the cut.
			last, _ := sub.Extra["last_pts"].(float64)
			lost := cut - last
			r.Notes = append(r.Notes, fmt.Sprintf("cut %d: killed %.2fs after the recording started; its last recovered frame is at %.2fs: %.2fs lost", i+1, cut, last, lost))
			if lost < 0 || lost > maxLoss {
				return fmt.Errorf("cut %d: %.2fs lost, want 0 to %.1f s (an unsealed 1 s segment and the time to seal one)", i+1, lost, maxLoss)
			}
		}
	}
	return nil
}

// hilManifest is the part of a recording's manifest the checks read.
type hilManifest struct {
	EndReason string  `json:"end_reason"`
	Duration  float64 `json:"duration_seconds"`
}

// manifest decrypts a recording's manifest with the stock age CLI.
func manifest(out, data, id, identity string) (hilManifest, error) {
	var m hilManifest
	b, err := exec.Command("/usr/bin/age", "-d", "-i", identity, filepath.Join(out, data, "recordings", id, "manifest.age")).Output()
	if err != nil {
		return m, fmt.Errorf("age -d manifest.age of %s: %w", id, err)
	}
	return m, json.Unmarshal(b, &m)
}
