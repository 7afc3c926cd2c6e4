package alsa

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"attune.dev/attune/internal/monoclock"
	"golang.org/x/sys/unix"
)

// PCM is an open PCM device node, /dev/snd/pcmC<card>D<device>c (capture)
// or …p (playback), driven with the kernel's ioctls. It is a Device; it
// also writes frames (for playback).
type PCM struct {
	fd      int
	path    string
	capture bool
}

var _ Device = (*PCM)(nil)

// OpenPCM opens a PCM device node, non-blocking (Wait polls it).
func OpenPCM(path string) (*PCM, error) {
	capture := len(path) > 0 && path[len(path)-1] == 'c'
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &PCM{fd: fd, path: path, capture: capture}, nil
}

// Open opens the capture device name (see Find) and starts recording from
// it; see NewSource.
func Open(name string, opts Options) (*Source, error) {
	path, err := Find(name, opts)
	if err != nil {
		return nil, err
	}
	pcm, err := OpenPCM(path)
	if err != nil {
		return nil, fmt.Errorf("alsa: %w", err)
	}
	s, err := NewSource(pcm, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return s, nil
}

func (p *PCM) ioctl(req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(p.fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EPIPE:
			return ErrOverrun
		case unix.ESTRPIPE:
			return ErrSuspended
		case unix.EAGAIN:
			return ErrAgain
		case unix.ENODEV, unix.EBADFD:
			return fmt.Errorf("%w: %w", ErrUnplugged, e)
		}
		return e
	}
}

func (p *PCM) Refine(hw *HWParams) error {
	return p.ioctl(ioctlHWRefine, unsafe.Pointer(hw))
}

func (p *PCM) SetHWParams(hw *HWParams) error {
	return p.ioctl(ioctlHWParams, unsafe.Pointer(hw))
}

func (p *PCM) SetSWParams(sw *SWParams) error {
	return p.ioctl(ioctlSWParams, unsafe.Pointer(sw))
}

func (p *PCM) Prepare() error { return p.ioctl(ioctlPrepare, nil) }
func (p *PCM) Start() error   { return p.ioctl(ioctlStart, nil) }
func (p *PCM) Drop() error    { return p.ioctl(ioctlDrop, nil) }

// Drain waits until a playback stream has played what was written.
func (p *PCM) Drain() error {
	// DRAIN blocks only on a blocking descriptor.
	if err := unix.SetNonblock(p.fd, false); err != nil {
		return err
	}
	defer unix.SetNonblock(p.fd, true)
	return p.ioctl(ioctlDrain, nil)
}

// Wait polls for frames to read (capture) or room to write (playback).
// An error state (overrun) counts as ready: the next read reports it.
func (p *PCM) Wait(timeout time.Duration) error {
	ev := int16(unix.POLLOUT)
	if p.capture {
		ev = unix.POLLIN
	}
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: ev}}
	for {
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrTimeout
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			return fmt.Errorf("poll %s: %w", p.path, unix.EBADF)
		}
		return nil
	}
}

func (p *PCM) ReadFrames(buf []byte, frames int) (int, error) {
	return p.xfer(ioctlReadI, buf, frames)
}

// WriteFrames writes up to frames interleaved frames from buf
// (SNDRV_PCM_IOCTL_WRITEI_FRAMES); ErrAgain when there is no room.
func (p *PCM) WriteFrames(buf []byte, frames int) (int, error) {
	return p.xfer(ioctlWriteI, buf, frames)
}

func (p *PCM) xfer(req uintptr, buf []byte, frames int) (int, error) {
	if frames <= 0 || len(buf) == 0 {
		return 0, nil
	}
	x := xferi{buf: uintptr(unsafe.Pointer(&buf[0])), frames: uint(frames)}
	err := p.ioctl(req, unsafe.Pointer(&x))
	runtime.KeepAlive(buf)
	if err != nil {
		return 0, err
	}
	return int(x.result), nil
}

func (p *PCM) Status() (Status, error) {
	var st pcmStatus
	if err := p.ioctl(ioctlStatus, unsafe.Pointer(&st)); err != nil {
		return Status{}, err
	}
	return Status{
		State:   st.state,
		Trigger: time.Duration(st.triggerTstamp.Nano()),
		Tstamp:  time.Duration(st.tstamp.Nano()),
		ApplPtr: uint64(st.applPtr),
		HwPtr:   uint64(st.hwPtr),
		Avail:   uint64(st.avail),
	}, nil
}

// MonotonicNow reads CLOCK_MONOTONIC, which the source asks the kernel to
// stamp the status with.
func (p *PCM) MonotonicNow() time.Duration { return monoclock.Now() }

func (p *PCM) Close() error { return unix.Close(p.fd) }

// xferi is struct snd_xferi: 24 bytes with 8-byte words, 12 on 32-bit ARM.
type xferi struct {
	result int     // snd_pcm_sframes_t
	buf    uintptr // void *
	frames uint    // snd_pcm_uframes_t
}

// pcmStatus is struct snd_pcm_status with the userspace struct timespec of
// the GOARCH (x/sys's unix.Timespec: 16 bytes on 64-bit, 8 on 32-bit ARM,
// whose 32-bit time_t ioctl the kernel keeps): 152 bytes with 8-byte
// words, 108 on arm (TestABILayout). The padding after state is the
// alignment of the timespec.
type pcmStatus struct {
	state               uint32
	triggerTstamp       unix.Timespec
	tstamp              unix.Timespec
	applPtr             uint
	hwPtr               uint
	delay               int
	avail               uint
	availMax            uint
	overrange           uint
	suspendedState      uint32
	audioTstampData     uint32
	audioTstamp         unix.Timespec
	driverTstamp        unix.Timespec
	audioTstampAccuracy uint32
	reserved            [52 - 2*unsafe.Sizeof(unix.Timespec{})]byte
}

const (
	iocNone, iocWrite, iocRead = 0, 1, 2
	iocSizeShift               = 16
)

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<iocSizeShift | 'A'<<8 | nr }

var (
	ioctlHWRefine = ioc(iocRead|iocWrite, 0x10, unsafe.Sizeof(HWParams{}))
	ioctlHWParams = ioc(iocRead|iocWrite, 0x11, unsafe.Sizeof(HWParams{}))
	ioctlSWParams = ioc(iocRead|iocWrite, 0x13, unsafe.Sizeof(SWParams{}))
	ioctlStatus   = ioc(iocRead, 0x20, unsafe.Sizeof(pcmStatus{}))
	ioctlPrepare  = ioc(iocNone, 0x40, 0)
	ioctlStart    = ioc(iocNone, 0x42, 0)
	ioctlDrop     = ioc(iocNone, 0x43, 0)
	ioctlDrain    = ioc(iocNone, 0x44, 0)
	ioctlWriteI   = ioc(iocWrite, 0x50, unsafe.Sizeof(xferi{}))
	ioctlReadI    = ioc(iocRead, 0x51, unsafe.Sizeof(xferi{}))
)

// The sizes are checked when building for each GOARCH (the values with
// 4-byte words are 32-bit ARM's, whose time_t is 32 bits too; each 4-byte
// word and timespec half doubles with 8-byte words), the offsets and ioctl
// numbers by TestABILayout.
const word = unsafe.Sizeof(uintptr(0))/4 - 1 // 0 on 32-bit, 1 on 64-bit

var (
	_ [unsafe.Sizeof(HWParams{}) - (604 + 4*word)]struct{}
	_ [(604 + 4*word) - unsafe.Sizeof(HWParams{})]struct{}
	_ [unsafe.Sizeof(SWParams{}) - (104 + 32*word)]struct{}
	_ [(104 + 32*word) - unsafe.Sizeof(SWParams{})]struct{}
	_ [unsafe.Sizeof(pcmStatus{}) - (108 + 44*word)]struct{}
	_ [(108 + 44*word) - unsafe.Sizeof(pcmStatus{})]struct{}
	_ [unsafe.Sizeof(xferi{}) - (12 + 12*word)]struct{}
	_ [(12 + 12*word) - unsafe.Sizeof(xferi{})]struct{}
)
