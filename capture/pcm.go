package capture

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/pion/mediadevices/pkg/wave"
)

// This file holds the portable part of the microphone source: the
// conversion of captured audio to the recording's format and the choice of
// device, which mic_linux.go uses and which are tested without hardware.

// Errors OpenMicrophone wraps, so that a caller can record without audio
// rather than fail.
var (
	// ErrMicrophoneUnsupported: this build cannot record from a microphone.
	ErrMicrophoneUnsupported = errors.New("microphone: not supported by this build")
	// ErrNoMicrophone: the system has no capture device to default to.
	ErrNoMicrophone = errors.New("microphone: no capture device found")
)

// appendMonoS16LE appends a to dst as mono signed 16-bit little-endian PCM.
// Channels are averaged; float samples (full scale ±1.0) are scaled by 32767,
// rounded and clipped.
func appendMonoS16LE(dst []byte, a wave.Audio) []byte {
	info := a.ChunkInfo()
	ch, n := info.Channels, info.Len
	if ch <= 0 || n <= 0 {
		return dst
	}
	put := func(v int16) { dst = append(dst, byte(v), byte(uint16(v)>>8)) }
	switch a := a.(type) {
	case *wave.Int16Interleaved:
		n = min(n, len(a.Data)/ch)
		dst = growBytes(dst, 2*n)
		if ch == 1 {
			for _, v := range a.Data[:n] {
				put(v)
			}
			return dst
		}
		for i := range n {
			sum := 0
			for _, v := range a.Data[i*ch : i*ch+ch] {
				sum += int(v)
			}
			put(int16(sum / ch))
		}
	case *wave.Int16NonInterleaved:
		ch = min(ch, len(a.Data))
		if ch == 0 {
			return dst
		}
		for _, c := range a.Data[:ch] {
			n = min(n, len(c))
		}
		dst = growBytes(dst, 2*n)
		for i := range n {
			sum := 0
			for c := range ch {
				sum += int(a.Data[c][i])
			}
			put(int16(sum / ch))
		}
	case *wave.Float32Interleaved:
		n = min(n, len(a.Data)/ch)
		dst = growBytes(dst, 2*n)
		for i := range n {
			var sum float64
			for _, v := range a.Data[i*ch : i*ch+ch] {
				sum += float64(v)
			}
			put(floatToS16(sum / float64(ch)))
		}
	case *wave.Float32NonInterleaved:
		ch = min(ch, len(a.Data))
		if ch == 0 {
			return dst
		}
		for _, c := range a.Data[:ch] {
			n = min(n, len(c))
		}
		dst = growBytes(dst, 2*n)
		for i := range n {
			var sum float64
			for c := range ch {
				sum += float64(a.Data[c][i])
			}
			put(floatToS16(sum / float64(ch)))
		}
	default:
		// Any other layout, one sample at a time.
		dst = growBytes(dst, 2*n)
		for i := range n {
			var sum float64
			for c := range ch {
				switch s := a.At(i, c).(type) {
				case wave.Float32Sample:
					sum += float64(s) * 32767
				case wave.Int16Sample:
					sum += float64(s)
				default:
					// wave's convention: Int16SampleFormat takes Int() >> 16.
					sum += float64(s.Int() >> 16)
				}
			}
			put(clipS16(math.Round(sum / float64(ch))))
		}
	}
	return dst
}

func floatToS16(f float64) int16 { return clipS16(math.Round(f * 32767)) }

func clipS16(v float64) int16 {
	switch {
	case v != v: // NaN
		return 0
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		b = append(make([]byte, 0, len(b)+n), b...)
	}
	return b
}

// micDevice describes a capture device as the microphone driver lists it.
type micDevice struct {
	Label    string  // the driver's label: the hex of miniaudio's device ID
	Name     string  // human-readable description
	Priority float32 // higher for the system default
}

// ID is the device's ID in readable form (for ALSA, such as "hw:1,0" or
// "default"), or the label if the ID is not text.
func (d micDevice) ID() string {
	b, err := hex.DecodeString(d.Label)
	if err != nil {
		return d.Label
	}
	b = []byte(strings.TrimRight(string(b), "\x00"))
	if len(b) == 0 {
		return d.Label
	}
	for _, c := range b {
		if c < ' ' || c > '~' {
			return d.Label
		}
	}
	return string(b)
}

// silent reports a device that records only silence: ALSA's "null" PCM,
// which also delivers it as fast as it is read, and miniaudio's own null
// backend, its fallback when no sound system works.
func (d micDevice) silent() bool {
	return d.ID() == "null" || d.Name == "NULL Capture Device"
}

func (d micDevice) String() string {
	if d.Name == "" || d.Name == d.ID() {
		return fmt.Sprintf("%q", d.ID())
	}
	return fmt.Sprintf("%q (%s)", d.ID(), d.Name)
}

// micChoose picks the device for name: "" or "default" is the highest
// priority device that records sound; anything else must equal a device's ID,
// label or name, or be part of exactly one device's ID or name (ignoring
// case).
func micChoose(devs []micDevice, name string) (micDevice, error) {
	devs = append([]micDevice(nil), devs...)
	sort.SliceStable(devs, func(i, j int) bool {
		if devs[i].Priority != devs[j].Priority {
			return devs[i].Priority > devs[j].Priority
		}
		return devs[i].ID() < devs[j].ID()
	})
	list := func() string {
		if len(devs) == 0 {
			return "none"
		}
		var s []string
		for _, d := range devs {
			s = append(s, d.String())
		}
		return strings.Join(s, ", ")
	}
	if name == "" || name == "default" {
		for _, d := range devs {
			if !d.silent() {
				return d, nil
			}
		}
		if len(devs) > 0 {
			return micDevice{}, fmt.Errorf("%w (only %s, which records silence; name it to use it anyway)", ErrNoMicrophone, list())
		}
		return micDevice{}, fmt.Errorf("%w (is a microphone plugged in?)", ErrNoMicrophone)
	}
	for _, d := range devs {
		if d.ID() == name || d.Label == name || d.Name == name {
			return d, nil
		}
	}
	var found []micDevice
	lower := strings.ToLower(name)
	for _, d := range devs {
		if strings.Contains(strings.ToLower(d.ID()), lower) || strings.Contains(strings.ToLower(d.Name), lower) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return micDevice{}, fmt.Errorf("microphone: no capture device %q (available: %s)", name, list())
	}
	var s []string
	for _, d := range found {
		s = append(s, d.String())
	}
	return micDevice{}, fmt.Errorf("microphone: %q matches several capture devices: %s", name, strings.Join(s, ", "))
}
