package v4l2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"attune.dev/attune/internal/monoclock"
	"attune.dev/attune/mkv"
)

// This file holds the portable part of the V4L2 webcam source: the device
// interface, format negotiation and frame handling. v4l2_linux.go opens a real
// camera through github.com/blackjack/webcam; everywhere else Open
// reports that V4L2 is unavailable. The types below mirror webcam's so that
// this file builds on every platform (webcam itself does not build on
// windows), and the linux adapter converts between them.

// PixelFormat is a V4L2 fourcc pixel format code (webcam.PixelFormat).
type PixelFormat uint32

// Pixel formats the V4L2 source can record.
const (
	PixFmtMJPEG PixelFormat = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24 // V4L2_PIX_FMT_MJPEG
	PixFmtJPEG  PixelFormat = 'J' | 'P'<<8 | 'E'<<16 | 'G'<<24 // V4L2_PIX_FMT_JPEG
	PixFmtYUYV  PixelFormat = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24 // V4L2_PIX_FMT_YUYV (4:2:2)
)

// String returns the fourcc, e.g. "MJPG".
func (f PixelFormat) String() string {
	b := []byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)}
	for _, c := range b {
		if c < ' ' || c > '~' {
			return fmt.Sprintf("0x%08x", uint32(f))
		}
	}
	return strings.TrimRight(string(b), " ")
}

// FrameSize mirrors webcam.FrameSize: a discrete size has Min == Max and
// zero steps; a stepwise range has non-zero steps.
type FrameSize struct {
	MinWidth  uint32
	MaxWidth  uint32
	StepWidth uint32

	MinHeight  uint32
	MaxHeight  uint32
	StepHeight uint32
}

// FrameRate mirrors webcam.FrameRate. It describes frame intervals as
// fractions Numerator/Denominator seconds: 1/30 is 30 frames per second. A
// discrete interval has Min == Max and zero steps; a stepwise range runs from
// the Min interval (fastest) to the Max interval (slowest).
type FrameRate struct {
	MinNumerator  uint32
	MaxNumerator  uint32
	StepNumerator uint32

	MinDenominator  uint32
	MaxDenominator  uint32
	StepDenominator uint32
}

// ErrTimeout is what a Device's WaitForFrame returns when no frame
// arrived within the timeout (webcam returns a *webcam.Timeout, which the
// linux adapter translates). Errors with a Timeout() method reporting true
// count as timeouts too.
var ErrTimeout = errors.New("v4l2: timed out waiting for a frame")

// Device is the part of a V4L2 capture device that the source uses: the
// methods of *webcam.Webcam (github.com/blackjack/webcam v0.6.1), with
// webcam's types replaced by the mirror types above. Timeouts are in seconds,
// as in webcam.
//
// GetFrame dequeues a filled buffer; its bytes stay valid only until
// ReleaseFrame(index) hands the buffer back to the driver. GetFrame returns
// an error whose Timeout() reports true (EAGAIN) when no frame is ready.
// Unlike webcam's, it also returns when the driver captured the frame, on
// the clock MonotonicNow reads (CLOCK_MONOTONIC), if the driver says.
type Device interface {
	GetSupportedFormats() map[PixelFormat]string
	GetSupportedFrameSizes(f PixelFormat) []FrameSize
	GetSupportedFramerates(f PixelFormat, width, height uint32) []FrameRate
	SetImageFormat(f PixelFormat, width, height uint32) (PixelFormat, uint32, uint32, error)
	SetFramerate(fps float32) error
	SetBufferCount(count uint32) error
	StartStreaming() error
	WaitForFrame(timeout uint32) error
	GetFrame() (Frame, error)
	// MonotonicNow reads the clock of Frame.Captured.
	MonotonicNow() time.Duration
	ReleaseFrame(index uint32) error
	StopStreaming() error
	Close() error
}

// Frame is a buffer GetFrame dequeued.
type Frame struct {
	Data  []byte // the bytes the driver filled; valid until ReleaseFrame(Index)
	Index uint32
	// Captured is when the driver captured the frame (struct
	// v4l2_buffer.timestamp), on the clock MonotonicNow reads; valid only if
	// Timed, which drivers without monotonic timestamps leave false.
	Captured time.Duration
	Timed    bool
	// Sequence is the driver's frame counter (v4l2_buffer.sequence): a
	// gap says it dropped frames before they were dequeued.
	Sequence uint32
}

// Mode is a frame size and rate.
type Mode struct {
	Width, Height int
	FPS           float64
}

func (m Mode) String() string { return fmt.Sprintf("%dx%d@%g", m.Width, m.Height, m.FPS) }

// DefaultModes returns the modes the V4L2 source tries, best first:
// 1280x720@30, 1920x1080@30, 960x540@30, 800x600@30, 640x480@30.
func DefaultModes() []Mode {
	return []Mode{
		{1280, 720, 30},
		{1920, 1080, 30},
		{960, 540, 30},
		{800, 600, 30},
		{640, 480, 30},
	}
}

// Options configures a V4L2 source.
type Options struct {
	// Prefer lists the modes to try, best first; empty means
	// DefaultModes. When the camera supports none of them, the source
	// takes the largest size no bigger than 1280x720 (or, if every size is
	// bigger, the smallest) at the frame rate closest to 30.
	Prefer []Mode
	// Clock is the recording's clock, which packets are stamped on. A
	// frame is stamped with the driver's capture time mapped onto it (the
	// two clocks are read together when streaming starts), or, from a driver
	// without monotonic timestamps, with Clock when it is dequeued. The
	// recorder sets it to its capture clock; nil means the time since the
	// process started (both on CLOCK_MONOTONIC).
	Clock func() time.Duration
}

// epoch anchors the default clock.
var epoch = time.Now()

func sinceStart() time.Duration { return time.Since(epoch) }

// Stats counts what a V4L2 source did with the frames it dequeued.
type Stats struct {
	Frames   int // delivered
	Empty    int // skipped: zero bytes
	Corrupt  int // skipped: MJPEG not starting with FFD8, or a short YUYV frame
	Repaired int // MJPEG frames without Huffman tables, given the standard ones
	Mismatch int // delivered MJPEG frames whose size differs from the track's
	Timeouts int // WaitForFrame timeouts
	Untimed  int // delivered frames stamped when read: the driver gave no monotonic capture time
	Nudged   int // delivered frames moved 1 ms after the previous one, whose stamp was not that much earlier
	// DriverDropped is how many frames the driver's sequence numbers
	// skipped: frames it captured and dropped before they were dequeued
	// (no free buffer: the reader was late). Every frame it did deliver is
	// counted above.
	DriverDropped int
}

const (
	v4l2Buffers     = 4
	v4l2WaitSeconds = 2               // WaitForFrame timeout
	v4l2Stall       = 5 * time.Second // no frame for this long is an error
	v4l2JPEGQuality = 85              // YUYV frames are encoded at this quality
	v4l2MaxWidth    = 1280            // fallback sizes are at most this big
	v4l2MaxHeight   = 720
	v4l2FallbackFPS = 30
)

// Source records MJPEG video from a V4L2 camera: NewSource and Open return
// one. It is a capture source (Tracks, Next, Close).
type Source struct {
	dev   Device
	track mkv.Track
	yuyv  bool // frames are YUYV and are encoded to JPEG

	clock  func() time.Duration
	mono   monoclock.Map        // the driver's capture times onto clock
	stamps monoclock.Increasing // under mu
	nextMu sync.Mutex           // serialises Next
	img    *image.YCbCr         // YUYV conversion buffer, used under nextMu

	mu        sync.Mutex // guards the device against Close
	closed    bool
	stats     Stats
	sequence  uint32 // the last dequeued frame's, if sequenced
	sequenced bool
}

var errV4L2Closed = fmt.Errorf("v4l2: %w", os.ErrClosed)

// NewSource negotiates a mode with dev and starts streaming. It prefers
// MJPEG (fourcc MJPG or JPEG), which passes through unchanged; a camera with
// only YUYV is recorded by encoding each frame to JPEG, which costs CPU.
//
// NewSource takes ownership of dev: Close closes it, and so does a failed
// NewSource.
func NewSource(dev Device, opts Options) (*Source, error) {
	s, err := newSource(dev, opts)
	if err != nil {
		return nil, fmt.Errorf("v4l2: %w", err)
	}
	return s, nil
}

func newSource(dev Device, opts Options) (*Source, error) {
	if dev == nil {
		return nil, errors.New("no device")
	}
	s, err := startV4L2(dev, opts)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return s, nil
}

func startV4L2(dev Device, opts Options) (*Source, error) {
	prefer := opts.Prefer
	if len(prefer) == 0 {
		prefer = DefaultModes()
	}
	f, mode, err := v4l2Negotiate(dev, prefer)
	if err != nil {
		return nil, err
	}
	gotF, gotW, gotH, err := dev.SetImageFormat(f, uint32(mode.Width), uint32(mode.Height))
	if err != nil {
		return nil, fmt.Errorf("set format %v %dx%d: %w", f, mode.Width, mode.Height, err)
	}
	switch gotF {
	case PixFmtMJPEG, PixFmtJPEG, PixFmtYUYV:
		f = gotF
	default:
		return nil, fmt.Errorf("set format %v %dx%d: camera switched to %v", f, mode.Width, mode.Height, gotF)
	}
	// The driver may adjust the size; webcam v0.6.1 reports the requested
	// size even then, so MJPEG frames are also checked (Stats.Mismatch).
	if gotW > 0 && gotH > 0 {
		mode.Width, mode.Height = int(gotW), int(gotH)
	}
	if mode.FPS > 0 {
		if err := dev.SetFramerate(float32(mode.FPS)); err != nil {
			// Not fatal: the camera runs at its default rate.
			mode.FPS = 0
		}
	}
	if err := dev.SetBufferCount(v4l2Buffers); err != nil {
		return nil, fmt.Errorf("set buffer count: %w", err)
	}
	if err := dev.StartStreaming(); err != nil {
		return nil, fmt.Errorf("start streaming: %w", err)
	}
	s := &Source{
		dev: dev,
		track: mkv.Track{
			Kind:   mkv.Video,
			Codec:  mkv.CodecMJPEG,
			Width:  mode.Width,
			Height: mode.Height,
			FPS:    mode.FPS,
		},
		yuyv:  f == PixFmtYUYV,
		clock: opts.Clock,
	}
	if s.clock == nil {
		s.clock = sinceStart
	}
	// Read the two clocks together: the driver's capture times map onto
	// the recording's clock.
	s.mono = monoclock.NewMap(s.clock, dev.MonotonicNow)
	if s.yuyv {
		s.img = image.NewYCbCr(image.Rect(0, 0, mode.Width, mode.Height), image.YCbCrSubsampleRatio422)
	}
	return s, nil
}

// v4l2Negotiate picks the pixel format and mode.
func v4l2Negotiate(dev Device, prefer []Mode) (PixelFormat, Mode, error) {
	formats := dev.GetSupportedFormats()
	var f PixelFormat
	for _, c := range []PixelFormat{PixFmtMJPEG, PixFmtJPEG, PixFmtYUYV} {
		if _, ok := formats[c]; ok {
			f = c
			break
		}
	}
	if f == 0 {
		var have []string
		for c, desc := range formats {
			have = append(have, fmt.Sprintf("%v (%s)", c, desc))
		}
		sort.Strings(have)
		if len(have) == 0 {
			have = []string{"none"}
		}
		return 0, Mode{}, fmt.Errorf("camera offers neither MJPEG nor YUYV (offers: %s)", strings.Join(have, ", "))
	}

	var sizes []FrameSize
	for _, s := range dev.GetSupportedFrameSizes(f) {
		if s.MaxWidth > 0 && s.MaxHeight > 0 {
			sizes = append(sizes, s)
		}
	}

	// The first preferred mode the camera supports. A camera that lists no
	// sizes (or no rates) gets the first preference and the driver decides.
	for _, m := range prefer {
		if m.Width <= 0 || m.Height <= 0 {
			continue
		}
		w, h := uint32(m.Width), uint32(m.Height)
		if len(sizes) > 0 && !v4l2HasSize(sizes, w, h) {
			continue
		}
		rates := dev.GetSupportedFramerates(f, w, h)
		if m.FPS <= 0 || len(rates) == 0 {
			return f, m, nil
		}
		if fps, ok := v4l2HasRate(rates, m.FPS); ok {
			m.FPS = fps
			return f, m, nil
		}
	}
	if len(sizes) == 0 {
		// No sizes listed, and no preference at a listed rate: take the
		// first preference at the listed rate closest to its own.
		for _, m := range prefer {
			if m.Width > 0 && m.Height > 0 {
				want := m.FPS
				if want <= 0 {
					want = v4l2FallbackFPS
				}
				m.FPS = v4l2ClosestRate(dev.GetSupportedFramerates(f, uint32(m.Width), uint32(m.Height)), want)
				return f, m, nil
			}
		}
		return 0, Mode{}, errors.New("no valid mode to try")
	}

	// Else the largest size within 1280x720, or the smallest if none fits.
	var best Mode
	bestFits := false
	for _, s := range sizes {
		w := v4l2Clamp(v4l2MaxWidth, s.MinWidth, s.MaxWidth, s.StepWidth)
		h := v4l2Clamp(v4l2MaxHeight, s.MinHeight, s.MaxHeight, s.StepHeight)
		m := Mode{Width: int(w), Height: int(h)}
		fits := w <= v4l2MaxWidth && h <= v4l2MaxHeight
		area, bestArea := m.Width*m.Height, best.Width*best.Height
		switch {
		case best.Width == 0,
			fits && !bestFits,
			fits && bestFits && area > bestArea,
			!fits && !bestFits && area < bestArea:
			best, bestFits = m, fits
		}
	}
	best.FPS = v4l2ClosestRate(dev.GetSupportedFramerates(f, uint32(best.Width), uint32(best.Height)), v4l2FallbackFPS)
	return f, best, nil
}

// v4l2HasSize reports whether one of sizes includes w x h.
func v4l2HasSize(sizes []FrameSize, w, h uint32) bool {
	for _, s := range sizes {
		if v4l2InRange(w, s.MinWidth, s.MaxWidth, s.StepWidth) && v4l2InRange(h, s.MinHeight, s.MaxHeight, s.StepHeight) {
			return true
		}
	}
	return false
}

func v4l2InRange(v, lo, hi, step uint32) bool {
	if v < lo || v > hi {
		return false
	}
	return step == 0 || (v-lo)%step == 0
}

// v4l2Clamp returns the value in [lo, hi] on the step grid closest to v from
// below (or lo).
func v4l2Clamp(v, lo, hi, step uint32) uint32 {
	if hi < lo {
		hi = lo
	}
	v = min(max(v, lo), hi)
	if step > 0 {
		v = lo + (v-lo)/step*step
	}
	return v
}

// v4l2RateRange returns the lowest and highest frame rate an interval entry
// allows.
func v4l2RateRange(r FrameRate) (lo, hi float64, ok bool) {
	if r.MinNumerator == 0 || r.MinDenominator == 0 {
		return 0, 0, false
	}
	hi = float64(r.MinDenominator) / float64(r.MinNumerator) // shortest interval
	lo = hi
	if (r.StepNumerator != 0 || r.StepDenominator != 0) && r.MaxNumerator != 0 && r.MaxDenominator != 0 {
		lo = float64(r.MaxDenominator) / float64(r.MaxNumerator)
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi, true
}

// v4l2HasRate reports whether rates allow fps (within 1%, so 29.97 counts as
// 30) and returns the rate the camera will actually run at.
func v4l2HasRate(rates []FrameRate, fps float64) (float64, bool) {
	const tol = 0.01
	for _, r := range rates {
		lo, hi, ok := v4l2RateRange(r)
		if !ok || fps < lo*(1-tol) || fps > hi*(1+tol) {
			continue
		}
		if lo == hi {
			return lo, true
		}
		return math.Min(math.Max(fps, lo), hi), true
	}
	return 0, false
}

// v4l2ClosestRate returns the allowed rate closest to want (the higher one
// on a tie), or 0 if rates allow none.
func v4l2ClosestRate(rates []FrameRate, want float64) float64 {
	best := 0.0
	for _, r := range rates {
		lo, hi, ok := v4l2RateRange(r)
		if !ok {
			continue
		}
		c := math.Min(math.Max(want, lo), hi)
		if d, bd := math.Abs(c-want), math.Abs(best-want); best == 0 || d < bd || (d == bd && c > best) {
			best = c
		}
	}
	return best
}

// DriverDropped is Stats().DriverDropped: the recording pipeline reports
// it as capture.Stats.VideoDropped.
func (s *Source) DriverDropped() int { return s.Stats().DriverDropped }

// Tracks returns the one video track.
func (s *Source) Tracks() []mkv.Track { return []mkv.Track{s.track} }

// Stats returns what the source has counted so far.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Next waits for the next frame and returns it as a standalone JPEG,
// stamped with when the driver captured it on the recording's clock (see
// Options.Clock); stamps strictly increase. It skips empty and corrupt frames.
// A timeout in the driver is retried; five seconds without a frame is an
// error, as is any other device error (such as ENODEV when the camera is
// unplugged). Cancelling ctx is noticed within the 2 s wait timeout; Close
// makes Next return at once.
func (s *Source) Next(ctx context.Context) (mkv.Packet, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()

	start := time.Now()
	var waited time.Duration // summed timeouts: a fake may time out instantly
	skipped := 0
	for {
		if err := ctx.Err(); err != nil {
			return mkv.Packet{}, err
		}
		if s.isClosed() {
			return mkv.Packet{}, errV4L2Closed
		}
		if time.Since(start) >= v4l2Stall || waited >= v4l2Stall {
			if skipped > 0 {
				return mkv.Packet{}, fmt.Errorf("v4l2: no usable frames for %v (%d skipped as empty or corrupt)", v4l2Stall, skipped)
			}
			return mkv.Packet{}, fmt.Errorf("v4l2: no frames for %v (is the camera unplugged?)", v4l2Stall)
		}
		if err := s.dev.WaitForFrame(v4l2WaitSeconds); err != nil {
			if s.isClosed() {
				return mkv.Packet{}, errV4L2Closed
			}
			if v4l2IsTimeout(err) {
				waited += v4l2WaitSeconds * time.Second
				s.mu.Lock()
				s.stats.Timeouts++
				s.mu.Unlock()
				continue
			}
			if v4l2IsTemporary(err) {
				continue
			}
			return mkv.Packet{}, v4l2DeviceError("wait for frame", err)
		}
		p, got, err := s.dequeue()
		if err != nil {
			return mkv.Packet{}, err
		}
		switch got {
		case v4l2Frame:
			if s.yuyv {
				var buf bytes.Buffer
				buf.Grow(s.track.Width * s.track.Height / 4)
				if err := jpeg.Encode(&buf, s.img, &jpeg.Options{Quality: v4l2JPEGQuality}); err != nil {
					return mkv.Packet{}, fmt.Errorf("v4l2: encode yuyv frame: %w", err)
				}
				p.Data = buf.Bytes()
			}
			return p, nil
		case v4l2Skipped:
			skipped++
		case v4l2NotReady:
			// Poll said ready but the buffer was not: do not spin.
			t := time.NewTimer(5 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

type v4l2Got int

const (
	v4l2NotReady v4l2Got = iota
	v4l2Frame
	v4l2Skipped
)

// dequeue takes one buffer from the driver, copies (or, for YUYV, converts)
// it and hands the buffer straight back. It holds mu so that Close never
// unmaps a buffer under it.
func (s *Source) dequeue() (mkv.Packet, v4l2Got, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return mkv.Packet{}, 0, errV4L2Closed
	}
	frame, err := s.dev.GetFrame()
	read := s.clock()
	buf, index := frame.Data, frame.Index
	if err != nil {
		if v4l2IsTimeout(err) || v4l2IsTemporary(err) {
			return mkv.Packet{}, v4l2NotReady, nil
		}
		return mkv.Packet{}, 0, v4l2DeviceError("dequeue frame", err)
	}
	// A counter that went back (streaming restarted) is no gap.
	if s.sequenced && frame.Sequence-s.sequence-1 < 1<<31 {
		s.stats.DriverDropped += int(frame.Sequence - s.sequence - 1)
	}
	s.sequence, s.sequenced = frame.Sequence, true
	// buf belongs to the driver: read it only before ReleaseFrame.
	var data []byte
	got := v4l2Frame
	switch {
	case len(buf) == 0:
		s.stats.Empty++
		got = v4l2Skipped
	case s.yuyv:
		if !v4l2YUYVToYCbCr(s.img, buf) {
			s.stats.Corrupt++
			got = v4l2Skipped
		}
	default:
		var repaired, sized bool
		var w, h int
		data, repaired, w, h, sized = mjpegCopy(buf)
		switch {
		case data == nil:
			s.stats.Corrupt++
			got = v4l2Skipped
		case repaired:
			s.stats.Repaired++
		}
		if data != nil && sized && (w != s.track.Width || h != s.track.Height) {
			s.stats.Mismatch++
		}
	}
	if err := s.dev.ReleaseFrame(index); err != nil {
		return mkv.Packet{}, 0, v4l2DeviceError(fmt.Sprintf("release frame %d", index), err)
	}
	var pts time.Duration
	if got == v4l2Frame {
		s.stats.Frames++
		pts = s.stamp(frame, read)
	}
	return mkv.Packet{Kind: mkv.Video, PTS: pts, Data: data, Key: true}, got, nil
}

// stamp returns a delivered frame's PTS: its capture time on the
// recording's clock (never later than read, when it was dequeued), or read
// if the driver gave none; 1 ms after the previous frame's if it would not
// be later. s.mu is held.
func (s *Source) stamp(f Frame, read time.Duration) time.Duration {
	pts := read
	if f.Timed {
		pts = s.mono.At(f.Captured, read)
	} else {
		s.stats.Untimed++
	}
	pts = s.stamps.Next(pts)
	s.stats.Nudged = s.stamps.Nudged()
	return pts
}

func (s *Source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops streaming and closes the device. It may be called while Next
// is blocked (stopping the stream wakes the driver's wait) and more than
// once; only the first call does anything.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	// A camera that is gone has stopped streaming already.
	if err := s.dev.StopStreaming(); err != nil && !v4l2Unplugged(err) {
		errs = append(errs, fmt.Errorf("v4l2: stop streaming: %w", err))
	}
	if err := s.dev.Close(); err != nil {
		errs = append(errs, fmt.Errorf("v4l2: close: %w", err))
	}
	return errors.Join(errs...)
}

// v4l2IsTimeout reports a wait that timed out (or EAGAIN, whose Errno
// reports Timeout).
func v4l2IsTimeout(err error) bool {
	if errors.Is(err, ErrTimeout) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// v4l2IsTemporary reports an interrupted call (EINTR) worth retrying.
func v4l2IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func v4l2DeviceError(op string, err error) error {
	if v4l2Unplugged(err) {
		return fmt.Errorf("v4l2: %s: %w (camera unplugged?)", op, err)
	}
	return fmt.Errorf("v4l2: %s: %w", op, err)
}

// v4l2YUYVToYCbCr converts a YUYV 4:2:2 frame (Y0 U Y1 V, limited range as
// UVC cameras send it) into img (4:2:2, full range as JPEG expects). Rows may
// be padded. It reports false for a frame too short for img.
func v4l2YUYVToYCbCr(img *image.YCbCr, buf []byte) bool {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	stride := 2 * w
	if len(buf) < stride*h {
		return false
	}
	if len(buf) > stride*h && len(buf)%h == 0 && len(buf)/h > stride {
		stride = len(buf) / h // bytesperline with padding
	}
	lutY, lutC := &yuyvLUT.y, &yuyvLUT.c
	for y := 0; y < h; y++ {
		row := buf[y*stride : y*stride+2*w]
		ys := img.Y[y*img.YStride : y*img.YStride+w]
		cb := img.Cb[y*img.CStride : y*img.CStride+(w+1)/2]
		cr := img.Cr[y*img.CStride : y*img.CStride+(w+1)/2]
		for k := 0; k < w/2; k++ {
			p := row[4*k : 4*k+4 : 4*k+4]
			ys[2*k] = lutY[p[0]]
			cb[k] = lutC[p[1]]
			ys[2*k+1] = lutY[p[2]]
			cr[k] = lutC[p[3]]
		}
		if w%2 == 1 { // not a real YUYV size, but keep the last column sane
			ys[w-1] = lutY[row[2*w-2]]
			cb[w/2], cr[w/2] = 128, 128
		}
	}
	return true
}

// yuyvLUT expands BT.601 limited range (Y 16-235, C 16-240) to full range.
var yuyvLUT = func() (t struct{ y, c [256]uint8 }) {
	for i := range 256 {
		y := math.Round(float64(i-16) * 255 / 219)
		c := math.Round(float64(i-128)*255/224) + 128
		t.y[i] = uint8(min(max(y, 0), 255))
		t.c[i] = uint8(min(max(c, 0), 255))
	}
	return t
}()

// mjpegCopy copies an MJPEG frame out of a driver buffer. It returns nil for
// a frame that does not start with SOI (FFD8). A frame without Huffman
// tables (the AVI1 style of many cameras) gets the standard ones (ITU T.81
// K.3) inserted before its scan, so that every frame is a standalone JPEG.
// Bytes after the image's EOI are dropped: some drivers report the whole
// buffer as used, leaving padding or a stale earlier frame's tail after it.
// w and h come from the frame header (sized false if it has none).
func mjpegCopy(buf []byte) (data []byte, repaired bool, w, h int, sized bool) {
	if len(buf) < 2 || buf[0] != 0xFF || buf[1] != 0xD8 {
		return nil, false, 0, 0, false
	}
	sos, hasDHT, w, h, sized, ok := mjpegScanHeader(buf)
	if !ok {
		// Pass unparseable headers on untouched: decoders may cope.
		return bytes.Clone(buf), false, w, h, sized
	}
	if end := mjpegEnd(buf, sos); end > 0 {
		buf = buf[:end]
	}
	if hasDHT {
		return bytes.Clone(buf), false, w, h, sized
	}
	data = make([]byte, 0, len(buf)+len(mjpegStandardDHT))
	data = append(data, buf[:sos]...)
	data = append(data, mjpegStandardDHT...)
	data = append(data, buf[sos:]...)
	return data, true, w, h, sized
}

// mjpegEnd returns the offset just past the EOI that ends the image whose
// first SOS marker is at sos, or 0 if the image has no EOI (truncated). It
// walks the scans: entropy-coded data holds FF only as stuffed FF00, a
// restart marker or fill, so the first other marker after a scan is either
// EOI or a segment between scans (progressive JPEG), which is skipped. An
// FFD9 inside an APP segment (an EXIF thumbnail) comes before the first SOS
// and is never mistaken for the end.
func mjpegEnd(b []byte, sos int) int {
	i := sos
	for i+1 < len(b) {
		// b[i:] is a marker with a length: SOS or a segment between scans.
		if i+4 > len(b) {
			return 0
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 {
			return 0
		}
		i += 2 + n
		// Entropy-coded data (or nothing, after a table segment) up to the
		// next marker.
		for {
			j := bytes.IndexByte(b[min(i, len(b)):], 0xFF)
			if j < 0 {
				return 0
			}
			i += j
			for i+1 < len(b) && b[i+1] == 0xFF { // fill bytes
				i++
			}
			if i+1 >= len(b) {
				return 0
			}
			switch m := b[i+1]; {
			case m == 0x00 || (m >= 0xD0 && m <= 0xD7): // stuffing, restart
				i += 2
				continue
			case m == 0xD9:
				return i + 2
			}
			break
		}
	}
	return 0
}

// mjpegScanHeader walks the marker segments of a JPEG up to its first SOS.
// It returns the offset of the SOS marker, whether a DHT came before it, and
// the frame size from the SOF segment.
func mjpegScanHeader(b []byte) (sos int, hasDHT bool, w, h int, sized, ok bool) {
	i := 2
	for i+1 < len(b) {
		if b[i] != 0xFF {
			return 0, false, 0, 0, false, false
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7): // no length
			i += 2
			continue
		case m == 0xD9:
			return 0, false, 0, 0, false, false
		case m == 0xDA:
			return i, hasDHT, w, h, sized, true
		}
		if i+4 > len(b) {
			break
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 || i+2+n > len(b) {
			break
		}
		seg := b[i+4 : i+2+n]
		switch {
		case m == 0xC4:
			hasDHT = true
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && len(seg) >= 5:
			h = int(seg[1])<<8 | int(seg[2])
			w = int(seg[3])<<8 | int(seg[4])
			sized = true
		}
		i += 2 + n
	}
	return 0, false, 0, 0, false, false
}

// mjpegStandardDHT is one DHT segment holding the four example Huffman
// tables of ITU T.81 annex K.3 (those image/jpeg and libjpeg encode with).
var mjpegStandardDHT = func() []byte {
	tables := []struct {
		class  byte // 0 DC, 1 AC ... <<4 | table id
		counts [16]byte
		values []byte
	}{
		{0x00, [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{0x10, [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125}, []byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
			0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
			0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
			0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
			0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
			0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
			0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
			0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
			0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
			0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
			0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
		{0x01, [16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{0x11, [16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119}, []byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
			0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
			0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
			0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
			0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
			0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
			0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
			0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
			0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
			0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
			0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		}},
	}
	n := 2
	for _, t := range tables {
		n += 1 + 16 + len(t.values)
	}
	seg := []byte{0xFF, 0xC4, byte(n >> 8), byte(n)}
	for _, t := range tables {
		seg = append(seg, t.class)
		seg = append(seg, t.counts[:]...)
		seg = append(seg, t.values...)
	}
	return seg
}()
