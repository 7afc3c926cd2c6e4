// Package v4l2test holds the fake V4L2 camera, for testing code that drives
// a v4l2.Device without the hardware.
package v4l2test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall"
	"time"

	"attune.dev/attune/v4l2"
)

// Camera is a fake V4L2 camera that a test drives: it offers configurable
// formats, sizes and rates, delivers frames the test pushes (or a generator
// makes), can time out or fail on demand, and records what was done to it.
//
// It checks the buffer discipline of a real driver: each buffer GetFrame
// hands out must be released exactly once, and on release its bytes are
// overwritten, so a caller that reads a frame after releasing it sees
// garbage. Problems are collected for Check.
//
// Set the configuration fields before handing the camera to a source; the
// methods are safe for concurrent use.
type Camera struct {
	// Formats the camera offers, with descriptions.
	Formats map[v4l2.PixelFormat]string
	// Sizes per format.
	Sizes map[v4l2.PixelFormat][]v4l2.FrameSize
	// Rates offered for every format and size, unless RatesFor is set.
	Rates []v4l2.FrameRate
	// RatesFor, if set, returns the rates for one format and size.
	RatesFor func(f v4l2.PixelFormat, width, height uint32) []v4l2.FrameRate
	// Adjust, if set, is what the driver makes of a SetImageFormat request
	// (a real driver picks the nearest size it supports).
	Adjust func(f v4l2.PixelFormat, width, height uint32) (v4l2.PixelFormat, uint32, uint32)
	// Generate, if set, makes frame n (counting from 0) whenever the queue
	// is empty, so the camera never runs dry.
	Generate func(n int) []byte
	// Trailer, if set, returns the bytes a driver leaves after frame n
	// (counting every frame GetFrame returns, from 0) in the buffer it
	// reports as used: drivers that report the whole buffer leave padding
	// or the tail of an earlier, longer frame there.
	Trailer func(n int) []byte
	// FrameInterval, if set, gives frames kernel-like capture times: the
	// first frame is captured one interval after StartStreaming, each next
	// one an interval later (PushGap shifts them), on Monotonic's clock.
	// Zero leaves frames untimed, like a driver without monotonic
	// timestamps.
	FrameInterval time.Duration
	// Monotonic is the camera's CLOCK_MONOTONIC, which MonotonicNow reads;
	// nil means the real time since the camera was made, plus an hour of
	// uptime.
	Monotonic func() time.Duration
	// Second is how long one second of a WaitForFrame timeout lasts when the
	// queue is empty (default a real second); tests make it short.
	Second time.Duration

	// Errors returned by the setup calls, if set.
	SetFormatErr, SetFramerateErr, StartErr error

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	queue     []camEvent
	generated int
	served    int    // frames GetFrame returned
	sequence  uint32 // the next frame's v4l2_buffer.sequence
	made      time.Time
	captured  time.Duration // capture time of the last frame (FrameInterval)
	bufCount  uint32
	buffers   [][]byte
	held      []bool
	streaming bool
	closed    bool
	unplugged bool
	calls     CameraCalls
	history   []string
	problems  []string
}

// CameraCalls records what was done to a Camera.
type CameraCalls struct {
	Format        v4l2.PixelFormat // last SetImageFormat request
	Width, Height uint32
	FPS           float32 // last SetFramerate
	BufferCount   uint32  // last SetBufferCount
	Starts, Stops int     // StartStreaming, StopStreaming calls that worked
	Closes        int
	Waits         int // WaitForFrame calls
	Gets          int // GetFrame calls that returned a frame
	Releases      map[uint32]int
	Held          int // buffers dequeued and not yet released
}

type camEventKind int

const (
	camFrame camEventKind = iota
	camTimeout
	camWaitErr
	camGetErr
	camGap
)

type camEvent struct {
	kind  camEventKind
	frame []byte
	err   error
	gap   time.Duration
}

// NewCamera returns a camera offering MJPEG at 640x480 and 1280x720, each at
// 30 and 15 frames per second.
func NewCamera() *Camera {
	return &Camera{
		made:    time.Now(),
		Formats: map[v4l2.PixelFormat]string{v4l2.PixFmtMJPEG: "Motion-JPEG"},
		Sizes: map[v4l2.PixelFormat][]v4l2.FrameSize{
			v4l2.PixFmtMJPEG: {Discrete(640, 480), Discrete(1280, 720)},
		},
		Rates: []v4l2.FrameRate{FPS(30), FPS(15)},
	}
}

var _ v4l2.Device = (*Camera)(nil)

// Discrete is a fixed frame size.
func Discrete(w, h uint32) v4l2.FrameSize {
	return v4l2.FrameSize{MinWidth: w, MaxWidth: w, MinHeight: h, MaxHeight: h}
}

// Stepwise is a range of frame sizes.
func Stepwise(minW, maxW, stepW, minH, maxH, stepH uint32) v4l2.FrameSize {
	return v4l2.FrameSize{
		MinWidth: minW, MaxWidth: maxW, StepWidth: stepW,
		MinHeight: minH, MaxHeight: maxH, StepHeight: stepH,
	}
}

// FPS is a discrete frame rate of n frames per second (interval 1/n).
func FPS(n uint32) v4l2.FrameRate {
	return Interval(1, n)
}

// Interval is a discrete frame interval of num/den seconds.
func Interval(num, den uint32) v4l2.FrameRate {
	return v4l2.FrameRate{MinNumerator: num, MaxNumerator: num, MinDenominator: den, MaxDenominator: den}
}

// IntervalRange is a stepwise range of frame intervals, from the shortest
// minNum/minDen to the longest maxNum/maxDen seconds.
func IntervalRange(minNum, minDen, maxNum, maxDen uint32) v4l2.FrameRate {
	return v4l2.FrameRate{
		MinNumerator: minNum, MaxNumerator: maxNum, StepNumerator: 1,
		MinDenominator: minDen, MaxDenominator: maxDen, StepDenominator: 1,
	}
}

// DropFrames makes the camera skip n sequence numbers before the next
// frame GetFrame returns: as a driver does for frames it captured and
// dropped because no buffer was free (the reader was late).
func (c *Camera) DropFrames(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sequence += uint32(n)
}

// Push queues frames; the camera copies them.
func (c *Camera) Push(frames ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range frames {
		c.queue = append(c.queue, camEvent{kind: camFrame, frame: append([]byte{}, f...)})
	}
	c.notify()
}

// PushGap shifts the capture times of the frames pushed after it by d: a
// stall when d is positive (the driver captured nothing for d), a clock
// going back when it is negative. It needs FrameInterval.
func (c *Camera) PushGap(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, camEvent{kind: camGap, gap: d})
	c.notify()
}

// PushTimeouts queues n WaitForFrame timeouts, returned at once.
func (c *Camera) PushTimeouts(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.queue = append(c.queue, camEvent{kind: camTimeout})
	}
	c.notify()
}

// PushWaitError queues an error for WaitForFrame to return.
func (c *Camera) PushWaitError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, camEvent{kind: camWaitErr, err: err})
	c.notify()
}

// PushGetError queues an error for GetFrame to return (after the frames
// queued before it).
func (c *Camera) PushGetError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, camEvent{kind: camGetErr, err: err})
	c.notify()
}

// Unplug makes the camera behave like one whose cable was pulled: waits
// return at once and every buffer operation fails with ENODEV.
func (c *Camera) Unplug() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unplugged = true
	c.notify()
}

// Calls returns what has been done to the camera so far.
func (c *Camera) Calls() CameraCalls {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	out.Releases = make(map[uint32]int, len(c.calls.Releases))
	for k, v := range c.calls.Releases {
		out.Releases[k] = v
	}
	for _, h := range c.held {
		if h {
			out.Held++
		}
	}
	return out
}

// History lists the calls that changed the camera's state, in order, such as
// "SetImageFormat MJPG 1280x720" or "StartStreaming".
func (c *Camera) History() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.history...)
}

// Check returns the misuse seen so far: buffers released twice or never
// dequeued, calls on a closed camera, every buffer held at once.
func (c *Camera) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) == 0 {
		return nil
	}
	return fmt.Errorf("camera misused: %v", c.problems)
}

// notify wakes waiters; c.mu must be held.
func (c *Camera) notify() {
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

func (c *Camera) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *Camera) log(format string, args ...any) {
	c.history = append(c.history, fmt.Sprintf(format, args...))
}

func (c *Camera) GetSupportedFormats() map[v4l2.PixelFormat]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[v4l2.PixelFormat]string, len(c.Formats))
	for f, d := range c.Formats {
		out[f] = d
	}
	return out
}

func (c *Camera) GetSupportedFrameSizes(f v4l2.PixelFormat) []v4l2.FrameSize {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.Formats[f]; !ok {
		return nil
	}
	return append([]v4l2.FrameSize(nil), c.Sizes[f]...)
}

func (c *Camera) GetSupportedFramerates(f v4l2.PixelFormat, width, height uint32) []v4l2.FrameRate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.Formats[f]; !ok {
		return nil
	}
	if c.RatesFor != nil {
		return c.RatesFor(f, width, height)
	}
	return append([]v4l2.FrameRate(nil), c.Rates...)
}

func (c *Camera) SetImageFormat(f v4l2.PixelFormat, width, height uint32) (v4l2.PixelFormat, uint32, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.problem("SetImageFormat after Close")
		return 0, 0, 0, syscall.EBADF
	}
	if c.streaming {
		return 0, 0, 0, syscall.EBUSY
	}
	c.calls.Format, c.calls.Width, c.calls.Height = f, width, height
	c.log("SetImageFormat %v %dx%d", f, width, height)
	if c.SetFormatErr != nil {
		return 0, 0, 0, c.SetFormatErr
	}
	if c.Adjust != nil {
		f, width, height = c.Adjust(f, width, height)
	}
	return f, width, height, nil
}

func (c *Camera) SetFramerate(fps float32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls.FPS = fps
	c.log("SetFramerate %g", fps)
	return c.SetFramerateErr
}

func (c *Camera) SetBufferCount(count uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streaming {
		return errors.New("set buffer count: already streaming")
	}
	c.calls.BufferCount = count
	c.bufCount = count
	c.log("SetBufferCount %d", count)
	return nil
}

func (c *Camera) StartStreaming() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.problem("StartStreaming after Close")
		return syscall.EBADF
	}
	if c.streaming {
		return errors.New("start streaming: already streaming")
	}
	if c.StartErr != nil {
		return c.StartErr
	}
	n := c.bufCount
	if n == 0 {
		n = 256 // webcam's default, which the driver cuts down
	}
	n = min(n, 32)
	c.buffers = make([][]byte, n)
	c.held = make([]bool, n)
	c.streaming = true
	c.captured = c.monotonicLocked()
	c.calls.Starts++
	c.log("StartStreaming")
	c.notify()
	return nil
}

// WaitForFrame returns nil when GetFrame has something to return, like
// poll(2) does, and also when the stream is stopped or the camera gone (a
// real driver reports POLLERR then, which webcam passes on as ready).
func (c *Camera) WaitForFrame(timeout uint32) error {
	c.mu.Lock()
	c.calls.Waits++
	var timer *time.Timer
	for {
		if c.closed || !c.streaming || c.unplugged {
			break
		}
		c.takeGapsLocked()
		if len(c.queue) > 0 {
			ev := c.queue[0]
			switch ev.kind {
			case camTimeout:
				c.queue = c.queue[1:]
				c.mu.Unlock()
				return v4l2.ErrTimeout
			case camWaitErr:
				c.queue = c.queue[1:]
				c.mu.Unlock()
				return ev.err
			}
			break
		}
		if c.Generate != nil {
			break
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		if timer == nil {
			sec := c.Second
			if sec <= 0 {
				sec = time.Second
			}
			timer = time.NewTimer(time.Duration(timeout) * sec)
			defer timer.Stop()
		}
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
		case <-timer.C:
			return v4l2.ErrTimeout
		}
	}
	c.mu.Unlock()
	return nil
}

// takeGapsLocked applies the gaps at the head of the queue; c.mu is held.
func (c *Camera) takeGapsLocked() {
	for len(c.queue) > 0 && c.queue[0].kind == camGap {
		c.captured += c.queue[0].gap
		c.queue = c.queue[1:]
	}
}

// MonotonicNow reads the camera's CLOCK_MONOTONIC (see Monotonic).
func (c *Camera) MonotonicNow() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.monotonicLocked()
}

func (c *Camera) monotonicLocked() time.Duration {
	if c.Monotonic != nil {
		return c.Monotonic()
	}
	if c.made.IsZero() { // a Camera not made by NewCamera
		c.made = time.Now()
	}
	return time.Hour + time.Since(c.made)
}

func (c *Camera) GetFrame() (v4l2.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.problem("GetFrame after Close")
		return v4l2.Frame{}, syscall.EBADF
	}
	if c.unplugged {
		return v4l2.Frame{}, syscall.ENODEV
	}
	if !c.streaming {
		c.problem("GetFrame while not streaming")
		return v4l2.Frame{}, syscall.EINVAL
	}
	c.takeGapsLocked()
	var frame []byte
	switch {
	case len(c.queue) > 0 && c.queue[0].kind == camGetErr:
		err := c.queue[0].err
		c.queue = c.queue[1:]
		return v4l2.Frame{}, err
	case len(c.queue) > 0 && c.queue[0].kind == camFrame:
		frame = c.queue[0].frame
	case len(c.queue) == 0 && c.Generate != nil:
		frame = nil // made below, once a buffer is free
	default:
		return v4l2.Frame{}, syscall.EAGAIN
	}
	index := -1
	for i, h := range c.held {
		if !h {
			index = i
			break
		}
	}
	if index < 0 {
		c.problem("GetFrame with all %d buffers held: frames are not being released", len(c.held))
		return v4l2.Frame{}, syscall.EAGAIN
	}
	if len(c.queue) > 0 {
		c.queue = c.queue[1:]
	} else {
		frame = c.Generate(c.generated)
		c.generated++
	}
	if c.Trailer != nil {
		frame = append(frame[:len(frame):len(frame)], c.Trailer(c.served)...)
	}
	c.served++
	if cap(c.buffers[index]) < len(frame) {
		c.buffers[index] = make([]byte, len(frame))
	}
	buf := c.buffers[index][:len(frame)]
	copy(buf, frame)
	c.held[index] = true
	c.calls.Gets++
	f := v4l2.Frame{Data: buf[:len(buf):len(buf)], Index: uint32(index), Sequence: c.sequence}
	c.sequence++
	if c.FrameInterval > 0 {
		c.captured += c.FrameInterval
		f.Captured, f.Timed = c.captured, true
	}
	return f, nil
}

// ReleaseFrame hands a buffer back and scribbles over it, as the driver
// would by filling it with the next frame.
func (c *Camera) ReleaseFrame(index uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.problem("ReleaseFrame(%d) after Close", index)
		return syscall.EBADF
	}
	if int(index) >= len(c.held) || !c.held[index] {
		c.problem("ReleaseFrame(%d) of a buffer not dequeued (released twice?)", index)
		return syscall.EINVAL
	}
	c.held[index] = false
	if c.calls.Releases == nil {
		c.calls.Releases = make(map[uint32]int)
	}
	c.calls.Releases[index]++
	b := c.buffers[index][:cap(c.buffers[index])]
	for i := range b {
		b[i] = 0xA5
	}
	if c.unplugged {
		return syscall.ENODEV
	}
	return nil
}

func (c *Camera) StopStreaming() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.streaming {
		return errors.New("stop streaming: not streaming")
	}
	c.stopLocked()
	if c.unplugged {
		return syscall.ENODEV
	}
	return nil
}

func (c *Camera) stopLocked() {
	c.streaming = false
	c.calls.Stops++
	c.log("StopStreaming")
	// STREAMOFF takes every buffer back and the mappings go away.
	for i := range c.held {
		c.held[i] = false
		b := c.buffers[i][:cap(c.buffers[i])]
		for j := range b {
			b[j] = 0xA5
		}
	}
	c.notify()
}

func (c *Camera) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		c.problem("Close called twice")
		return syscall.EBADF
	}
	if c.streaming {
		c.stopLocked()
	}
	c.closed = true
	c.calls.Closes++
	c.log("Close")
	c.notify()
	return nil
}

// YUYV makes a YUYV 4:2:2 frame, in the limited-range BT.601 encoding that
// UVC cameras send, from an RGB picture given pixel by pixel.
func YUYV(w, h int, rgb func(x, y int) (r, g, b uint8)) []byte {
	out := make([]byte, 0, w*h*2)
	for y := range h {
		for x := 0; x < w; x += 2 {
			y0, u0, v0 := limitedYCbCr(rgb(x, y))
			y1, u1, v1 := limitedYCbCr(rgb(x+1, y))
			out = append(out, y0, uint8((int(u0)+int(u1)+1)/2), y1, uint8((int(v0)+int(v1)+1)/2))
		}
	}
	return out
}

func limitedYCbCr(r8, g8, b8 uint8) (y, cb, cr uint8) {
	r, g, b := float64(r8), float64(g8), float64(b8)
	yf := 16 + (65.481*r+128.553*g+24.966*b)/255
	cbf := 128 + (-37.797*r-74.203*g+112.0*b)/255
	crf := 128 + (112.0*r-93.786*g-18.214*b)/255
	clamp := func(v float64) uint8 { return uint8(math.Min(math.Max(math.Round(v), 0), 255)) }
	return clamp(yf), clamp(cbf), clamp(crf)
}
