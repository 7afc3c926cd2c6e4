package alsa

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var (
	// ErrNoDevice: the system has no capture device to default to.
	ErrNoDevice = errors.New("alsa: no capture device found")
	// ErrUnsupported: ALSA exists only on Linux.
	ErrUnsupported = errors.New("alsa: sound capture needs Linux")
)

// CaptureDevice is a capture PCM as sysfs lists it.
type CaptureDevice struct {
	Card, Device int
	CardID       string // the card's id, such as "Loopback" or "C920"
	Path         string // its node, /dev/snd/pcmC<card>D<device>c
	usb          string // the USB device it belongs to (sysfs path), or ""
}

func (d CaptureDevice) String() string {
	return fmt.Sprintf("hw:%d,%d (%s)", d.Card, d.Device, d.CardID)
}

// Captures lists the capture PCMs in sysfs (under opts.SysRoot), by card
// and device.
func Captures(opts Options) ([]CaptureDevice, error) {
	sys, dev := roots(opts)
	names, err := filepath.Glob(filepath.Join(sys, "class/sound/pcmC*D*c"))
	if err != nil {
		return nil, err
	}
	var out []CaptureDevice
	for _, n := range names {
		base := filepath.Base(n)
		var card, device int
		if _, err := fmt.Sscanf(base, "pcmC%dD%dc", &card, &device); err != nil {
			continue
		}
		id, _ := os.ReadFile(filepath.Join(sys, "class/sound", fmt.Sprintf("card%d", card), "id"))
		out = append(out, CaptureDevice{
			Card: card, Device: device, CardID: strings.TrimSpace(string(id)),
			Path: filepath.Join(dev, "snd", base),
			usb:  usbParent(sys, n),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Card != out[j].Card {
			return out[i].Card < out[j].Card
		}
		return out[i].Device < out[j].Device
	})
	return out, nil
}

func roots(opts Options) (sys, dev string) {
	sys, dev = opts.SysRoot, opts.DevRoot
	if sys == "" {
		sys = "/sys"
	}
	if dev == "" {
		dev = "/dev"
	}
	return sys, dev
}

// usbParent resolves a sysfs class entry (a symlink into the device tree)
// and returns the USB device above it: the nearest directory with an
// idVendor file, or "" if there is none (a virtual or PCI device).
func usbParent(sys, entry string) string {
	p, err := filepath.EvalSymlinks(entry)
	if err != nil {
		return ""
	}
	top, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return ""
	}
	for ; len(p) > len(top) && strings.HasPrefix(p, top); p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Join(p, "idVendor")); err == nil {
			return p
		}
	}
	return ""
}

// Find returns the node of the capture device name:
//
//   - "" or "auto": the microphone on the same USB device as opts.Camera
//     (a webcam's own), else the first capture device;
//   - "default": the first capture device (lowest card, then device);
//   - "hw:CARD,DEV" or "hw:CARD", CARD a number or a card id such as
//     "Loopback" (DEV defaults to the card's first capture device);
//   - a node path such as /dev/snd/pcmC1D0c.
func Find(name string, opts Options) (string, error) {
	if strings.HasPrefix(name, "/") {
		return name, nil
	}
	devs, err := Captures(opts)
	if err != nil {
		return "", fmt.Errorf("alsa: list capture devices: %w", err)
	}
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
	switch name {
	case "", "auto", "default":
		if len(devs) == 0 {
			return "", fmt.Errorf("%w (is a microphone plugged in?)", ErrNoDevice)
		}
		if name != "default" && opts.Camera != "" {
			sys, _ := roots(opts)
			cam := usbParent(sys, filepath.Join(sys, "class/video4linux", filepath.Base(opts.Camera)))
			for _, d := range devs {
				if cam != "" && d.usb == cam {
					return d.Path, nil
				}
			}
		}
		return devs[0].Path, nil
	}
	spec, ok := strings.CutPrefix(name, "hw:")
	if !ok {
		return "", fmt.Errorf("alsa: %q is not a capture device: use auto, default, hw:CARD,DEV or /dev/snd/pcmC…c", name)
	}
	card, dev, hasDev := strings.Cut(spec, ",")
	devNum := -1
	if hasDev {
		n, err := strconv.Atoi(dev)
		if err != nil {
			return "", fmt.Errorf("alsa: %q: device %q is not a number", name, dev)
		}
		devNum = n
	}
	for _, d := range devs {
		if (strconv.Itoa(d.Card) == card || d.CardID == card) && (devNum < 0 || d.Device == devNum) {
			return d.Path, nil
		}
	}
	return "", fmt.Errorf("alsa: no capture device %s (available: %s)", name, list())
}
