package v4l2

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/blackjack/webcam"
)

// struct v4l2_buffer as linux/videodev2.h lays it out for each GOARCH the
// device runs on: 64-bit with a 16-byte struct timeval (checked with gcc's
// offsetof on amd64), 32-bit ARM with the 8-byte timeval of the 32-bit
// time_t ioctl, whose VIDIOC_DQBUF is 0xc0445611.
func TestV4L2BufferLayout(t *testing.T) {
	type layout struct {
		size, timestamp, timecode, sequence, memory, m, length, reserved2, reserved uintptr
		dqbuf                                                                       uintptr
	}
	abi64 := layout{88, 24, 40, 56, 60, 64, 72, 76, 80, 0xc0585611}
	want, ok := map[string]layout{
		"amd64": abi64,
		"arm64": abi64,
		"arm":   {68, 20, 28, 44, 48, 52, 56, 60, 64, 0xc0445611},
	}[runtime.GOARCH]
	if !ok {
		t.Skipf("no kernel ABI values for %s", runtime.GOARCH)
	}
	var b v4l2Buffer
	got := layout{
		unsafe.Sizeof(b), unsafe.Offsetof(b.timestamp), unsafe.Offsetof(b.timecode), unsafe.Offsetof(b.sequence),
		unsafe.Offsetof(b.memory), unsafe.Offsetof(b.m), unsafe.Offsetof(b.length), unsafe.Offsetof(b.reserved2),
		unsafe.Offsetof(b.reserved), vidiocDQBUF,
	}
	if got != want {
		t.Errorf("struct v4l2_buffer on %s:\n got %+v\nwant %+v", runtime.GOARCH, got, want)
	}
	if tc := unsafe.Sizeof(b.timecode); tc != 16 {
		t.Errorf("struct v4l2_timecode is %d bytes, want 16", tc)
	}
}

// The webcam fields the device reads exist in the pinned webcam version.
func TestWebcamFields(t *testing.T) {
	w := &webcam.Webcam{}
	if _, err := newWebcamDevice(w); err != nil {
		t.Fatal(err)
	}
	if bufs, err := webcamBuffers(w); err != nil || len(bufs) != 0 {
		t.Fatalf("buffers = %v, %v", bufs, err)
	}
}
