package v4l2

import (
	"errors"
	"fmt"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// Open opens a V4L2 camera such as /dev/video0 and starts recording from
// it; see NewSource.
func Open(path string, opts Options) (*Source, error) {
	w, err := webcam.Open(path)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	s, err := newSource(webcamDevice{w}, opts)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	return s, nil
}

// webcamDevice adapts *webcam.Webcam to Device.
//
// Two quirks of webcam v0.6.1 matter here: SetImageFormat returns the size
// that was asked for, not the one the driver settled on (the source checks
// MJPEG frame headers instead), and ReadFrame re-queues the buffer before
// the caller reads it, so the source never uses it.
type webcamDevice struct{ w *webcam.Webcam }

var _ Device = webcamDevice{}

func (d webcamDevice) GetSupportedFormats() map[PixelFormat]string {
	out := make(map[PixelFormat]string)
	for f, desc := range d.w.GetSupportedFormats() {
		out[PixelFormat(f)] = desc
	}
	return out
}

func (d webcamDevice) GetSupportedFrameSizes(f PixelFormat) []FrameSize {
	var out []FrameSize
	for _, s := range d.w.GetSupportedFrameSizes(webcam.PixelFormat(f)) {
		out = append(out, FrameSize(s))
	}
	return out
}

func (d webcamDevice) GetSupportedFramerates(f PixelFormat, width, height uint32) []FrameRate {
	var out []FrameRate
	for _, r := range d.w.GetSupportedFramerates(webcam.PixelFormat(f), width, height) {
		out = append(out, FrameRate(r))
	}
	return out
}

func (d webcamDevice) SetImageFormat(f PixelFormat, width, height uint32) (PixelFormat, uint32, uint32, error) {
	got, w, h, err := d.w.SetImageFormat(webcam.PixelFormat(f), width, height)
	return PixelFormat(got), w, h, err
}

func (d webcamDevice) SetFramerate(fps float32) error    { return d.w.SetFramerate(fps) }
func (d webcamDevice) SetBufferCount(count uint32) error { return d.w.SetBufferCount(count) }
func (d webcamDevice) StartStreaming() error             { return d.w.StartStreaming() }
func (d webcamDevice) GetFrame() ([]byte, uint32, error) { return d.w.GetFrame() }
func (d webcamDevice) ReleaseFrame(index uint32) error   { return d.w.ReleaseFrame(index) }
func (d webcamDevice) StopStreaming() error              { return d.w.StopStreaming() }
func (d webcamDevice) Close() error                      { return d.w.Close() }

func (d webcamDevice) WaitForFrame(timeout uint32) error {
	err := d.w.WaitForFrame(timeout)
	var t *webcam.Timeout
	if errors.As(err, &t) {
		return ErrTimeout
	}
	return err
}

// v4l2Unplugged reports the error a V4L2 device gives once it is gone.
func v4l2Unplugged(err error) bool { return errors.Is(err, unix.ENODEV) }
