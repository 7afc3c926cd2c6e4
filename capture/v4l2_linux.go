package capture

import (
	"errors"
	"fmt"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// OpenV4L2 opens a V4L2 camera such as /dev/video0 and starts recording from
// it; see NewV4L2Source.
func OpenV4L2(path string, opts V4L2Options) (Source, error) {
	w, err := webcam.Open(path)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	s, err := newV4L2Source(webcamDevice{w}, opts)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	return s, nil
}

// webcamDevice adapts *webcam.Webcam to V4L2Device.
//
// Two quirks of webcam v0.6.1 matter here: SetImageFormat returns the size
// that was asked for, not the one the driver settled on (the source checks
// MJPEG frame headers instead), and ReadFrame re-queues the buffer before
// the caller reads it, so the source never uses it.
type webcamDevice struct{ w *webcam.Webcam }

var _ V4L2Device = webcamDevice{}

func (d webcamDevice) GetSupportedFormats() map[V4L2PixelFormat]string {
	out := make(map[V4L2PixelFormat]string)
	for f, desc := range d.w.GetSupportedFormats() {
		out[V4L2PixelFormat(f)] = desc
	}
	return out
}

func (d webcamDevice) GetSupportedFrameSizes(f V4L2PixelFormat) []V4L2FrameSize {
	var out []V4L2FrameSize
	for _, s := range d.w.GetSupportedFrameSizes(webcam.PixelFormat(f)) {
		out = append(out, V4L2FrameSize(s))
	}
	return out
}

func (d webcamDevice) GetSupportedFramerates(f V4L2PixelFormat, width, height uint32) []V4L2FrameRate {
	var out []V4L2FrameRate
	for _, r := range d.w.GetSupportedFramerates(webcam.PixelFormat(f), width, height) {
		out = append(out, V4L2FrameRate(r))
	}
	return out
}

func (d webcamDevice) SetImageFormat(f V4L2PixelFormat, width, height uint32) (V4L2PixelFormat, uint32, uint32, error) {
	got, w, h, err := d.w.SetImageFormat(webcam.PixelFormat(f), width, height)
	return V4L2PixelFormat(got), w, h, err
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
		return ErrV4L2Timeout
	}
	return err
}

// v4l2Unplugged reports the error a V4L2 device gives once it is gone.
func v4l2Unplugged(err error) bool { return errors.Is(err, unix.ENODEV) }
