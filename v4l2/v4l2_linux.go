package v4l2

import (
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	"attune.dev/attune/internal/monoclock"
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
	d, err := newWebcamDevice(w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	s, err := newSource(d, opts)
	if err != nil {
		return nil, fmt.Errorf("v4l2: open %s: %w", path, err)
	}
	return s, nil
}

// webcamDevice adapts *webcam.Webcam to Device.
//
// Three quirks of webcam v0.6.1 matter here: SetImageFormat returns the
// size that was asked for, not the one the driver settled on (the source
// checks MJPEG frame headers instead); ReadFrame re-queues the buffer before
// the caller reads it, so the source never uses it; and GetFrame discards
// the buffer's timestamp, so frames are dequeued here with VIDIOC_DQBUF on
// webcam's file descriptor, from webcam's mappings (both read from its
// unexported fields, which TestWebcamFields pins for the version in go.mod).
type webcamDevice struct {
	w       *webcam.Webcam
	fd      uintptr
	buffers [][]byte // webcam's mappings, read after StartStreaming
}

var _ Device = (*webcamDevice)(nil)

func newWebcamDevice(w *webcam.Webcam) (*webcamDevice, error) {
	f := reflect.ValueOf(w).Elem().FieldByName("fd")
	if !f.IsValid() || f.Kind() != reflect.Uintptr {
		return nil, errors.New("webcam library without the fd field: dequeueing with timestamps needs github.com/blackjack/webcam v0.6.1")
	}
	return &webcamDevice{w: w, fd: uintptr(f.Uint())}, nil
}

// webcamBuffers reads webcam's buffer mappings.
func webcamBuffers(w *webcam.Webcam) ([][]byte, error) {
	f := reflect.ValueOf(w).Elem().FieldByName("buffers")
	if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Slice || f.Type().Elem().Elem().Kind() != reflect.Uint8 {
		return nil, errors.New("webcam library without the buffers field: dequeueing with timestamps needs github.com/blackjack/webcam v0.6.1")
	}
	out := make([][]byte, f.Len())
	for i := range out {
		out[i] = f.Index(i).Bytes()
	}
	return out, nil
}

func (d *webcamDevice) GetSupportedFormats() map[PixelFormat]string {
	out := make(map[PixelFormat]string)
	for f, desc := range d.w.GetSupportedFormats() {
		out[PixelFormat(f)] = desc
	}
	return out
}

func (d *webcamDevice) GetSupportedFrameSizes(f PixelFormat) []FrameSize {
	var out []FrameSize
	for _, s := range d.w.GetSupportedFrameSizes(webcam.PixelFormat(f)) {
		out = append(out, FrameSize(s))
	}
	return out
}

func (d *webcamDevice) GetSupportedFramerates(f PixelFormat, width, height uint32) []FrameRate {
	var out []FrameRate
	for _, r := range d.w.GetSupportedFramerates(webcam.PixelFormat(f), width, height) {
		out = append(out, FrameRate(r))
	}
	return out
}

func (d *webcamDevice) SetImageFormat(f PixelFormat, width, height uint32) (PixelFormat, uint32, uint32, error) {
	got, w, h, err := d.w.SetImageFormat(webcam.PixelFormat(f), width, height)
	return PixelFormat(got), w, h, err
}

func (d *webcamDevice) SetFramerate(fps float32) error    { return d.w.SetFramerate(fps) }
func (d *webcamDevice) SetBufferCount(count uint32) error { return d.w.SetBufferCount(count) }
func (d *webcamDevice) ReleaseFrame(index uint32) error   { return d.w.ReleaseFrame(index) }
func (d *webcamDevice) StopStreaming() error              { return d.w.StopStreaming() }
func (d *webcamDevice) Close() error                      { return d.w.Close() }

func (d *webcamDevice) StartStreaming() error {
	if err := d.w.StartStreaming(); err != nil {
		return err
	}
	bufs, err := webcamBuffers(d.w)
	if err != nil {
		return errors.Join(err, d.w.StopStreaming())
	}
	d.buffers = bufs
	return nil
}

// GetFrame dequeues a buffer with VIDIOC_DQBUF, keeping its timestamp.
func (d *webcamDevice) GetFrame() (Frame, error) {
	b := v4l2Buffer{typ: bufTypeVideoCapture, memory: memoryMMAP}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, d.fd, vidiocDQBUF, uintptr(unsafe.Pointer(&b))); errno != 0 {
		return Frame{}, errno
	}
	if int(b.index) >= len(d.buffers) {
		return Frame{}, fmt.Errorf("driver returned buffer %d of %d", b.index, len(d.buffers))
	}
	buf := d.buffers[b.index]
	f := Frame{Data: buf[:min(int(b.bytesused), len(buf))], Index: b.index, Sequence: b.sequence}
	if b.flags&bufFlagTimestampMask == bufFlagTimestampMonotonic && (b.timestamp.Sec != 0 || b.timestamp.Usec != 0) {
		f.Captured, f.Timed = time.Duration(b.timestamp.Nano()), true
	}
	return f, nil
}

// MonotonicNow reads CLOCK_MONOTONIC, the clock of the drivers' timestamps.
func (d *webcamDevice) MonotonicNow() time.Duration { return monoclock.Now() }

// v4l2Buffer is struct v4l2_buffer from linux/videodev2.h, with the
// userspace struct timeval of the GOARCH (x/sys's unix.Timeval: 16 bytes on
// 64-bit, 8 on 32-bit ARM, whose 32-bit time_t ioctl the kernel keeps):
// 88 bytes on amd64 and arm64, 68 on arm (TestV4L2BufferLayout).
type v4l2Buffer struct {
	index     uint32
	typ       uint32
	bytesused uint32
	flags     uint32
	field     uint32
	timestamp unix.Timeval
	timecode  struct {
		typ, flags                      uint32
		frames, seconds, minutes, hours uint8
		userbits                        [4]uint8
	}
	sequence  uint32
	memory    uint32
	m         uintptr // union: offset, userptr, planes, fd
	length    uint32
	reserved2 uint32
	reserved  uint32 // union: request_fd
}

// The size is checked when building for each GOARCH (88 bytes with 8-byte
// words, 68 with 4-byte ones), the offsets by TestV4L2BufferLayout.
const v4l2BufferABISize = 68 + 20*(unsafe.Sizeof(uintptr(0))/4-1)

var (
	_ [unsafe.Sizeof(v4l2Buffer{}) - v4l2BufferABISize]struct{}
	_ [v4l2BufferABISize - unsafe.Sizeof(v4l2Buffer{})]struct{}
)

const (
	bufTypeVideoCapture               = 1      // V4L2_BUF_TYPE_VIDEO_CAPTURE
	memoryMMAP                        = 1      // V4L2_MEMORY_MMAP
	bufFlagTimestampMask              = 0xe000 // V4L2_BUF_FLAG_TIMESTAMP_MASK
	bufFlagTimestampMonotonic         = 0x2000 // V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC
	iocRead, iocWrite                 = 2, 1
	vidiocDQBUF               uintptr = (iocRead|iocWrite)<<30 | uintptr(unsafe.Sizeof(v4l2Buffer{}))<<16 | 'V'<<8 | 17 // _IOWR('V', 17, struct v4l2_buffer)
)

func (d *webcamDevice) WaitForFrame(timeout uint32) error {
	err := d.w.WaitForFrame(timeout)
	var t *webcam.Timeout
	if errors.As(err, &t) {
		return ErrTimeout
	}
	return err
}

// v4l2Unplugged reports the error a V4L2 device gives once it is gone.
func v4l2Unplugged(err error) bool { return errors.Is(err, unix.ENODEV) }
