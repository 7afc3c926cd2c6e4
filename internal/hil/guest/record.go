//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recordSeconds is how long each `attuned record` runs.
const recordSeconds = 3

// videoNode finds /dev/videoN whose V4L2 name starts with prefix.
func videoNode(prefix string) (string, error) {
	names, _ := filepath.Glob("/sys/class/video4linux/video*/name")
	var seen []string
	for _, n := range names {
		b, _ := os.ReadFile(n)
		name := strings.TrimSpace(string(b))
		seen = append(seen, name)
		if strings.HasPrefix(name, prefix) {
			return "/dev/" + filepath.Base(filepath.Dir(n)), nil
		}
	}
	return "", fmt.Errorf("no video device named %s… (have %v)", prefix, seen)
}

// record runs `attuned record` from source into /data/<name> and notes
// the recording id and the command's stderr.
func record(r *Result, name, source string) error {
	data := "/data/" + name
	os.MkdirAll(data, 0o755)
	var stdout, stderr bytes.Buffer
	// A hung recording fails this scenario, not the whole VM run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(recordSeconds+60)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/hil/attuned", "record", "--source", source, "--audio", "none",
		"--recipients", "/hil/recipients.txt", "--data", data,
		"--duration", fmt.Sprintf("%ds", recordSeconds), "--log", "info")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t := time.Now()
	err := cmd.Run()
	logf("%s: attuned record took %v; stderr:\n%s", name, time.Since(t).Round(time.Millisecond), stderr.String())
	if err != nil {
		return fmt.Errorf("attuned record --source %s: %v\n%s", source, err, stderr.String())
	}
	id := strings.TrimSpace(stdout.String())
	if id == "" {
		return fmt.Errorf("attuned record --source %s printed no recording id\n%s", source, stderr.String())
	}
	r.Extra = map[string]any{"id": id, "data": strings.TrimPrefix(data, "/"), "seconds": recordSeconds}
	return nil
}

// yuyvScenario records from vivid, whose webcam input offers YUYV only:
// attuned encodes each frame to JPEG. The host probes the recording.
func yuyvScenario(r *Result) error {
	dev, err := videoNode("vivid")
	if err != nil {
		return err
	}
	return record(r, "yuyv", "v4l2:"+dev)
}

// mjpegScenario feeds the JPEG frames in /hil/frames (made by the host)
// to v4l2loopback's output side at 30 fps, in a loop, and records its
// capture side. The host checks the recorded frames are byte-exact copies
// of fed ones.
func mjpegScenario(r *Result) error {
	dev, err := videoNode("hil-loop")
	if err != nil {
		return err
	}
	frames, err := filepath.Glob("/hil/frames/*.jpg")
	if err != nil || len(frames) == 0 {
		return fmt.Errorf("no frames in /hil/frames")
	}
	sort.Strings(frames)
	var jpegs [][]byte
	for _, f := range frames {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		jpegs = append(jpegs, b)
	}
	fd, err := unix.Open(dev, unix.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	if err := setOutputFormat(fd, 640, 480, fourcc("MJPG")); err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	var written atomic.Int64
	go func() {
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			if _, err := unix.Write(fd, jpegs[i%len(jpegs)]); err != nil {
				done <- fmt.Errorf("feed %s: %w", dev, err)
				return
			}
			written.Add(1)
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the capture side appears once a frame is written
	recErr := record(r, "mjpeg", "v4l2:"+dev)
	close(stop)
	if err := <-done; err != nil {
		return err
	}
	r.Notes = append(r.Notes, fmt.Sprintf("fed %d frames of %d distinct", written.Load(), len(jpegs)))
	return recErr
}

func fourcc(s string) uint32 { return binary.LittleEndian.Uint32([]byte(s)) }

// setOutputFormat sets the output (writer) side's format with
// VIDIOC_S_FMT: struct v4l2_format is a u32 type, then a struct
// v4l2_pix_format in a 200-byte union aligned as a pointer (it holds
// struct v4l2_window's): 208 bytes on 64-bit, 204 on 32-bit ARM.
func setOutputFormat(fd, w, h int, pix uint32) error {
	const (
		pixFormatOffset = unsafe.Sizeof(uintptr(0))
		size            = pixFormatOffset + 200
		vidiocSFmt      = 3<<30 | size<<16 | 'V'<<8 | 5 // _IOWR('V', 5, struct v4l2_format)
		bufTypeOutput   = 2
		fieldNone       = 1
		colorspaceJPEG  = 7
	)
	var f [size]byte
	le := binary.LittleEndian
	le.PutUint32(f[0:], bufTypeOutput)
	p := f[pixFormatOffset:]
	le.PutUint32(p[0:], uint32(w))
	le.PutUint32(p[4:], uint32(h))
	le.PutUint32(p[8:], pix)
	le.PutUint32(p[12:], fieldNone)
	le.PutUint32(p[24:], colorspaceJPEG)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), vidiocSFmt, uintptr(unsafe.Pointer(&f[0]))); e != 0 {
		return fmt.Errorf("VIDIOC_S_FMT output %dx%d: %w", w, h, e)
	}
	if gw, gh, gp := le.Uint32(p[0:]), le.Uint32(p[4:]), le.Uint32(p[8:]); gw != uint32(w) || gh != uint32(h) || gp != pix {
		return fmt.Errorf("VIDIOC_S_FMT output: driver set %dx%d %08x", gw, gh, gp)
	}
	return nil
}
