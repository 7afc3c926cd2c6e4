package alsa

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"attune.dev/attune/internal/monoclock"
	"attune.dev/attune/mkv"
)

// Errors a Device returns for the conditions the source handles.
var (
	// ErrOverrun: the device's buffer filled before it was read (EPIPE);
	// the stream is stopped until Prepare.
	ErrOverrun = errors.New("alsa: overrun")
	// ErrSuspended: the device was suspended (ESTRPIPE); Prepare restarts it.
	ErrSuspended = errors.New("alsa: suspended")
	// ErrAgain: no frames ready (EAGAIN on the non-blocking device).
	ErrAgain = errors.New("alsa: no frames ready")
	// ErrTimeout: Wait timed out.
	ErrTimeout = errors.New("alsa: timed out waiting for frames")
	// ErrUnplugged: the device is gone (ENODEV, or the stream was
	// disconnected).
	ErrUnplugged = errors.New("alsa: device disconnected")
)

// Device is an open ALSA PCM: the ioctls the capture source uses. The
// linux implementation is *PCM; alsatest has a fake.
type Device interface {
	// Refine narrows p to the configurations the device supports
	// (SNDRV_PCM_IOCTL_HW_REFINE); an error means none is left.
	Refine(p *HWParams) error
	// SetHWParams installs a configuration, choosing the remaining
	// freedom as the kernel does (SNDRV_PCM_IOCTL_HW_PARAMS), and leaves
	// the chosen values in p.
	SetHWParams(p *HWParams) error
	// SetSWParams installs p (SNDRV_PCM_IOCTL_SW_PARAMS); the kernel sets
	// p.Boundary.
	SetSWParams(p *SWParams) error
	Prepare() error // SNDRV_PCM_IOCTL_PREPARE
	Start() error   // SNDRV_PCM_IOCTL_START
	Drop() error    // SNDRV_PCM_IOCTL_DROP: stop, discarding frames; wakes Wait
	// Wait waits up to timeout for frames to read (poll); ErrTimeout if
	// none came.
	Wait(timeout time.Duration) error
	// ReadFrames reads up to frames interleaved frames into buf
	// (SNDRV_PCM_IOCTL_READI_FRAMES); ErrAgain when none are ready,
	// ErrOverrun or ErrSuspended when the stream needs Prepare.
	ReadFrames(buf []byte, frames int) (int, error)
	Status() (Status, error) // SNDRV_PCM_IOCTL_STATUS
	// MonotonicNow reads the clock of Status's timestamps.
	MonotonicNow() time.Duration
	Close() error
}

// Options configures a capture source.
type Options struct {
	// Clock is the recording's clock, which packets are stamped on; nil
	// means the time since the process started (both on CLOCK_MONOTONIC).
	Clock func() time.Duration
	// OnOverrun, if set, is called (from Next) after each overrun the
	// source recovered from.
	OnOverrun func(Overrun)
	// Camera is the V4L2 camera the recording uses (/dev/videoN), for
	// Open's "auto": its own USB microphone is preferred.
	Camera string
	// SysRoot is where sysfs is mounted for Find ("" means /sys), DevRoot
	// where the device nodes are ("" means /dev).
	SysRoot, DevRoot string
}

// Overrun describes one recovered overrun.
type Overrun struct {
	Count int           // overruns so far, this one included
	Gap   time.Duration // sound lost: from the end of the last frame read to the first after recovery
}

// Config is what the source negotiated.
type Config struct {
	Format       Format
	Channels     int
	Rate         int
	PeriodFrames int
	BufferFrames int
}

func (c Config) String() string {
	return fmt.Sprintf("%s %d Hz %d ch, period %d, buffer %d frames", c.Format, c.Rate, c.Channels, c.PeriodFrames, c.BufferFrames)
}

// Stats counts what a source did.
type Stats struct {
	Chunks   int   // packets delivered
	Frames   int64 // frames delivered
	Overruns int   // overruns recovered from
	Resyncs  int   // stamps set from the status timestamp after drifting from the frame count by more than maxDrift
	Untimed  int   // chunks stamped when read: the driver gave no status timestamp
	Nudged   int   // stamps moved 1 ms after the previous one (monoclock.Step)
}

const (
	wantPeriod  = 20 * time.Millisecond
	wantBuffer  = 2 * time.Second // rides out a stall of the reader this long
	waitTimeout = 200 * time.Millisecond
	stallLimit  = 5 * time.Second // no sound for this long is an error
	// maxDrift is how far the stamp from the frame count may be from the
	// status timestamp before it is set from the status again.
	maxDrift = 20 * time.Millisecond
	// slew is the share of the difference between the status timestamp
	// and the frame count that each chunk's stamp takes up.
	slew = 8
)

// Source records from a capture Device: Tracks, Next and Close make it a
// capture source.
type Source struct {
	dev   Device
	cfg   Config
	track mkv.Track
	frame int // bytes per frame on the device

	clock  func() time.Duration
	mono   monoclock.Map
	onOver func(Overrun)

	nextMu  sync.Mutex    // serialises Next
	buf     []byte        // read buffer, under nextMu
	fresh   bool          // the stream (re)started: the next stamp comes from the status alone
	nextPTS time.Duration // end of the last chunk delivered
	stamps  monoclock.Increasing

	closeOnce sync.Once
	closing   atomic.Bool // Close has begun: device errors mean closed

	mu     sync.Mutex // guards dev against Close, and stats
	closed bool
	stats  Stats
}

var errClosed = fmt.Errorf("alsa: %w", os.ErrClosed)

// NewSource negotiates a configuration with dev and starts capturing. It
// takes ownership of dev: Close closes it, and so does a failed NewSource.
func NewSource(dev Device, opts Options) (*Source, error) {
	s, err := newSource(dev, opts)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("alsa: %w", err)
	}
	return s, nil
}

func newSource(dev Device, opts Options) (*Source, error) {
	cfg, err := Negotiate(dev)
	if err != nil {
		return nil, err
	}
	sw := &SWParams{
		TstampMode:     TstampEnable,
		PeriodStep:     1,
		AvailMin:       uint(cfg.PeriodFrames),
		StartThreshold: uint(cfg.BufferFrames),
		StopThreshold:  uint(cfg.BufferFrames),
		Proto:          ProtocolVersion,
		TstampType:     TstampTypeMonotonic,
	}
	if err := dev.SetSWParams(sw); err != nil {
		return nil, fmt.Errorf("set sw params: %w", err)
	}
	s := &Source{
		dev:   dev,
		cfg:   cfg,
		frame: cfg.Format.Bytes() * cfg.Channels,
		track: mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: cfg.Rate, Channels: cfg.Channels, BitDepth: 16},
		clock: opts.Clock, onOver: opts.OnOverrun,
	}
	if s.clock == nil {
		s.clock = sinceStart
	}
	s.buf = make([]byte, cfg.PeriodFrames*s.frame)
	s.mono = monoclock.NewMap(s.clock, dev.MonotonicNow)
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

var epoch = time.Now()

func sinceStart() time.Duration { return time.Since(epoch) }

// start prepares and starts the stream; the next chunk is stamped from the
// status timestamp alone.
func (s *Source) start() error {
	if err := s.dev.Prepare(); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := s.dev.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	s.fresh = true
	return nil
}

// Negotiate picks the format (S16_LE, else S32_LE, else S24_3LE), the
// channels (mono if the device can, else stereo, else its fewest), the
// rate (48 kHz if the device can, else 44.1, 32 or 16 kHz, else its
// highest) and a period near 20 ms with a buffer up to 2 s, and installs
// them.
func Negotiate(dev Device) (Config, error) {
	p := AnyHWParams()
	p.Mask(ParamAccess).Only(AccessRWInterleaved)
	if err := dev.Refine(p); err != nil {
		return Config{}, fmt.Errorf("device cannot read interleaved frames: %w", err)
	}
	var format Format
	for _, f := range []Format{FormatS16LE, FormatS32LE, FormatS24_3LE} {
		if p.Mask(ParamFormat).Has(uint32(f)) {
			format = f
			break
		}
	}
	if format == 0 {
		var have []string
		for f := range Format(256) {
			if p.Mask(ParamFormat).Has(uint32(f)) {
				have = append(have, f.String())
			}
		}
		return Config{}, fmt.Errorf("device offers no S16_LE, S32_LE or S24_3LE samples (only %v)", have)
	}
	p.Mask(ParamFormat).Only(uint32(format))
	if err := dev.Refine(p); err != nil {
		return Config{}, fmt.Errorf("set format %v: %w", format, err)
	}
	ch := *p.Interval(ParamChannels)
	channels := ch.Lo()
	switch {
	case ch.Contains(1):
		channels = 1
	case ch.Contains(2):
		channels = 2
	}
	p.Interval(ParamChannels).Set(channels, channels)
	if err := dev.Refine(p); err != nil {
		return Config{}, fmt.Errorf("set %d channels: %w", channels, err)
	}
	rates := *p.Interval(ParamRate)
	var rate uint32
	var tried []uint32
	for _, r := range []uint32{48000, 44100, 32000, 16000, rates.Hi(), rates.Lo()} {
		if !rates.Contains(r) {
			continue
		}
		q := *p
		q.Interval(ParamRate).Set(r, r)
		tried = append(tried, r)
		if dev.Refine(&q) == nil {
			*p, rate = q, r
			break
		}
	}
	if rate == 0 {
		return Config{}, fmt.Errorf("no sample rate works (device offers %d–%d Hz, tried %v)", rates.Lo(), rates.Hi(), tried)
	}
	// A period near 20 ms, a buffer of up to 2 s; each only if the device
	// allows it. HW_PARAMS then takes the shortest period and the longest
	// buffer left.
	us := func(d time.Duration) uint32 { return uint32(d / time.Microsecond) }
	for _, c := range []struct {
		n        int
		min, max uint32
	}{
		{ParamBufferTime, 0, us(wantBuffer)},
		{ParamPeriodTime, us(wantPeriod), us(2 * wantPeriod)},
		{ParamPeriodTime, us(wantPeriod / 4), us(4 * wantPeriod)}, // if the first would not do
	} {
		q := *p
		q.Interval(c.n).Set(max(c.min, q.Interval(c.n).Lo()), min(c.max, q.Interval(c.n).Hi()))
		if dev.Refine(&q) == nil {
			*p = q
		}
	}
	if err := dev.SetHWParams(p); err != nil {
		return Config{}, fmt.Errorf("set hw params %v %d Hz %d ch: %w", format, rate, channels, err)
	}
	cfg := Config{
		Format:       format,
		Channels:     int(p.Interval(ParamChannels).Lo()),
		Rate:         int(p.Interval(ParamRate).Lo()),
		PeriodFrames: int(p.Interval(ParamPeriodSize).Lo()),
		BufferFrames: int(p.Interval(ParamBufferSize).Lo()),
	}
	if cfg.Channels != int(channels) || cfg.Rate != int(rate) || cfg.PeriodFrames <= 0 || cfg.BufferFrames < cfg.PeriodFrames {
		return Config{}, fmt.Errorf("set hw params %v %d Hz %d ch: device settled on %v", format, rate, channels, cfg)
	}
	return cfg, nil
}

// Config returns what the source negotiated.
func (s *Source) Config() Config { return s.cfg }

// Tracks returns the source's one audio track: signed 16-bit PCM at the
// device's rate and channel count.
func (s *Source) Tracks() []mkv.Track { return []mkv.Track{s.track} }

// Stats returns what the source has counted so far.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Overruns is how many overruns the source recovered from.
func (s *Source) Overruns() int { return s.Stats().Overruns }

// Next reads the next period of sound (or what is ready of it) and returns
// it as signed 16-bit PCM, stamped with when its first frame was captured
// on the recording's clock. The stamp follows the frame count, so sound
// read late (the reader was stalled but the device's buffer held it) keeps
// its place; it is steered towards the kernel's status timestamp (the time
// of the device's last pointer update, CLOCK_MONOTONIC, mapped as the
// camera's frames are), and set from it after an overrun, so the gap shows.
// Overruns are recovered from and counted; five seconds without sound is
// an error. Close makes Next return.
func (s *Source) Next(ctx context.Context) (mkv.Packet, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	var waited time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return mkv.Packet{}, err
		}
		if waited >= stallLimit {
			return mkv.Packet{}, fmt.Errorf("alsa: no sound for %v (is the microphone unplugged?)", stallLimit)
		}
		if s.isClosed() {
			return mkv.Packet{}, errClosed
		}
		if err := s.dev.Wait(waitTimeout); err != nil {
			if s.closing.Load() {
				return mkv.Packet{}, errClosed
			}
			if errors.Is(err, ErrTimeout) {
				waited += waitTimeout
				continue
			}
			if !errors.Is(err, ErrOverrun) && !errors.Is(err, ErrSuspended) {
				return mkv.Packet{}, fmt.Errorf("alsa: wait: %w", err)
			}
		}
		p, ok, err := s.read()
		if err != nil {
			return mkv.Packet{}, err
		}
		if ok {
			return p, nil
		}
	}
}

// read reads what is ready, recovering from an overrun. It holds mu so
// that Close never closes the device under it.
func (s *Source) read() (mkv.Packet, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return mkv.Packet{}, false, errClosed
	}
	n, err := s.dev.ReadFrames(s.buf, s.cfg.PeriodFrames)
	if err != nil && s.closing.Load() {
		return mkv.Packet{}, false, errClosed
	}
	switch {
	case errors.Is(err, ErrAgain):
		return mkv.Packet{}, false, nil
	case errors.Is(err, ErrOverrun), errors.Is(err, ErrSuspended):
		if err := s.start(); err != nil {
			return mkv.Packet{}, false, fmt.Errorf("alsa: recover from overrun: %w", err)
		}
		s.stats.Overruns++
		return mkv.Packet{}, false, nil
	case err != nil:
		return mkv.Packet{}, false, fmt.Errorf("alsa: read: %w", err)
	case n <= 0:
		return mkv.Packet{}, false, nil
	}
	st, err := s.dev.Status()
	read := s.clock()
	if err != nil {
		return mkv.Packet{}, false, fmt.Errorf("alsa: status: %w", err)
	}
	pts := s.stamp(st, n, read)
	data := toS16(make([]byte, 0, n*2*s.cfg.Channels), s.buf[:n*s.frame], s.cfg.Format)
	s.stats.Chunks++
	s.stats.Frames += int64(n)
	return mkv.Packet{Kind: mkv.Audio, PTS: pts, Data: data, Key: true}, true, nil
}

// stamp returns the stamp of a chunk of n frames just read, given the
// status read after it. s.mu is held.
func (s *Source) stamp(st Status, n int, read time.Duration) time.Duration {
	dur := s.frames(int64(n))
	// The chunk's first frame was captured (Avail + n) frames before the
	// device's pointer reached HwPtr at Tstamp.
	var est time.Duration
	if st.Tstamp != 0 {
		est = s.mono.At(st.Tstamp-s.frames(int64(st.Avail)+int64(n)), read-dur)
	} else {
		s.stats.Untimed++
		est = read - dur - s.frames(int64(st.Avail))
	}
	pts := est
	switch {
	case s.fresh:
		if s.stats.Overruns > 0 && s.onOver != nil {
			s.onOver(Overrun{Count: s.stats.Overruns, Gap: est - s.nextPTS})
		}
		s.fresh = false
	case est-s.nextPTS > maxDrift || s.nextPTS-est > maxDrift:
		s.stats.Resyncs++
	default:
		pts = s.nextPTS + (est-s.nextPTS)/slew
	}
	pts = s.stamps.Next(pts)
	s.stats.Nudged = s.stamps.Nudged()
	s.nextPTS = pts + dur
	return pts
}

// frames is the duration of n frames.
func (s *Source) frames(n int64) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(s.cfg.Rate)
}

// toS16 appends src, interleaved samples of format f, to dst as signed
// 16-bit little-endian samples: S32_LE and S24_3LE keep their top 16 bits.
func toS16(dst, src []byte, f Format) []byte {
	switch f {
	case FormatS16LE:
		return append(dst, src...)
	case FormatS32LE:
		for i := 0; i+4 <= len(src); i += 4 {
			dst = append(dst, src[i+2], src[i+3])
		}
	case FormatS24_3LE:
		for i := 0; i+3 <= len(src); i += 3 {
			dst = append(dst, src[i+1], src[i+2])
		}
	}
	return dst
}

func (s *Source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops capturing and closes the device. It may be called while
// Next is blocked and more than once; only the first call does anything.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		// Drop stops the stream, which wakes a Wait under way.
		s.closing.Store(true)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dev.Drop()
		s.closed = true
		if e := s.dev.Close(); e != nil {
			err = fmt.Errorf("alsa: close: %w", e)
		}
	})
	return err
}
