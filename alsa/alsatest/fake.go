// Package alsatest holds a fake ALSA capture device, for testing code that
// drives an alsa.Device without sound hardware.
package alsatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"attune.dev/attune/alsa"
)

// Fake is a capture device on a virtual clock. It offers configurable
// formats, rates and channel counts through hw_params refinement, captures
// a period at a time as an interrupt-driven driver does (the status
// timestamp is the time of the last period boundary), and runs only as
// fast as it is read: a Wait that finds too few frames moves its clock to
// the next period boundary. Stall moves it on while nobody reads, so the
// buffer fills, and overruns when it is full, as a driver's does; Prepare
// and Start recover.
//
// Every sample is the index of its frame counted on the fake's clock from
// Uptime (modulo 2^15), the same on every channel, so a test can tell which
// frames arrived.
//
// Set the configuration fields before use; the methods are safe for
// concurrent use.
type Fake struct {
	// Formats offered; nil means S16_LE only.
	Formats []alsa.Format
	// Rates offered (discrete, as a USB microphone's); nil means 48000.
	Rates []uint32
	// Channel counts offered, from ChannelsMin to ChannelsMax; zero
	// means 1–2.
	ChannelsMin, ChannelsMax uint32
	// BufferMax is the largest buffer in frames; zero means 2 s.
	BufferMax uint32
	// Uptime is CLOCK_MONOTONIC when the fake is made; zero means an hour.
	Uptime time.Duration
	// NoTstamp makes Status report no timestamp, as a driver without one.
	NoTstamp bool

	mu      sync.Mutex
	started bool
	mono    time.Duration
	cfg     alsa.Config
	state   uint32
	trigger time.Duration
	tstamp  time.Duration
	hw      int64 // frames captured this run
	appl    int64 // frames read this run
	stall   time.Duration
	xruns   int
	closed  bool
}

var _ alsa.Device = (*Fake)(nil)

// errBadState is what a driver's EBADFD means: the stream is not in a
// state for the call.
var errBadState = errors.New("fake: file descriptor in bad state")

func (f *Fake) init() {
	if f.started {
		return
	}
	f.started = true
	if f.Uptime == 0 {
		f.Uptime = time.Hour
	}
	f.mono = f.Uptime
}

func (f *Fake) formats() []alsa.Format {
	if f.Formats == nil {
		return []alsa.Format{alsa.FormatS16LE}
	}
	return f.Formats
}

func (f *Fake) rates() []uint32 {
	if f.Rates == nil {
		return []uint32{48000}
	}
	r := slices.Clone(f.Rates)
	slices.Sort(r)
	return r
}

func (f *Fake) channels() (uint32, uint32) {
	if f.ChannelsMax == 0 {
		return 1, 2
	}
	return f.ChannelsMin, f.ChannelsMax
}

func (f *Fake) bufferMax(rate uint32) uint32 {
	if f.BufferMax == 0 {
		return 2 * rate
	}
	return f.BufferMax
}

// The fake's periods run from 5 to 100 ms.
const periodTimeMin, periodTimeMax = 5000, 100000

// narrow intersects iv with [lo, hi]; false if nothing is left.
func narrow(iv *alsa.Interval, lo, hi uint32) bool {
	l, h := max(iv.Lo(), lo), min(iv.Hi(), hi)
	if l > h {
		iv.Flags |= alsa.IntervalEmpty
		return false
	}
	iv.Set(l, h)
	return true
}

func (f *Fake) Refine(p *alsa.HWParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	return f.refine(p)
}

func (f *Fake) refine(p *alsa.HWParams) error {
	if f.closed {
		return syscall.EBADF
	}
	if !p.Mask(alsa.ParamAccess).Has(alsa.AccessRWInterleaved) {
		return syscall.EINVAL
	}
	p.Mask(alsa.ParamAccess).Only(alsa.AccessRWInterleaved)
	var fm alsa.Mask
	for _, fmt := range f.formats() {
		if p.Mask(alsa.ParamFormat).Has(uint32(fmt)) {
			fm.Bits[fmt/32] |= 1 << (fmt % 32)
		}
	}
	if fm == (alsa.Mask{}) {
		return syscall.EINVAL
	}
	*p.Mask(alsa.ParamFormat) = fm
	cmin, cmax := f.channels()
	if !narrow(p.Interval(alsa.ParamChannels), cmin, cmax) {
		return syscall.EINVAL
	}
	rates := f.rates()
	riv := p.Interval(alsa.ParamRate)
	var in []uint32
	for _, r := range rates {
		if riv.Contains(r) {
			in = append(in, r)
		}
	}
	if len(in) == 0 {
		return syscall.EINVAL
	}
	riv.Set(in[0], in[len(in)-1])
	if !narrow(p.Interval(alsa.ParamPeriodTime), periodTimeMin, periodTimeMax) {
		return syscall.EINVAL
	}
	bmax := uint64(f.bufferMax(in[len(in)-1])) * 1e6 / uint64(in[0])
	if !narrow(p.Interval(alsa.ParamBufferTime), 2*periodTimeMin, uint32(min(bmax, 1<<31))) {
		return syscall.EINVAL
	}
	return nil
}

func (f *Fake) SetHWParams(p *alsa.HWParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	if err := f.refine(p); err != nil {
		return err
	}
	var format alsa.Format
	for v := range uint32(256) {
		if p.Mask(alsa.ParamFormat).Has(v) {
			format = alsa.Format(v)
			break
		}
	}
	p.Mask(alsa.ParamFormat).Only(uint32(format))
	ch := p.Interval(alsa.ParamChannels).Lo()
	rate := p.Interval(alsa.ParamRate).Lo()
	period := uint32(uint64(rate) * uint64(p.Interval(alsa.ParamPeriodTime).Lo()) / 1e6)
	buffer := min(uint32(uint64(rate)*uint64(p.Interval(alsa.ParamBufferTime).Hi())/1e6), f.bufferMax(rate))
	buffer -= buffer % period
	if period == 0 || buffer < 2*period {
		return syscall.EINVAL
	}
	for _, s := range []struct {
		n int
		v uint32
	}{
		{alsa.ParamChannels, ch}, {alsa.ParamRate, rate}, {alsa.ParamPeriodSize, period}, {alsa.ParamBufferSize, buffer},
		{alsa.ParamPeriods, buffer / period}, {alsa.ParamSampleBits, uint32(8 * format.Bytes())},
	} {
		p.Interval(s.n).Set(s.v, s.v)
	}
	f.cfg = alsa.Config{Format: format, Channels: int(ch), Rate: int(rate), PeriodFrames: int(period), BufferFrames: int(buffer)}
	f.state = alsa.StateSetup
	return nil
}

// Config returns what SetHWParams installed.
func (f *Fake) Config() alsa.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *Fake) SetSWParams(p *alsa.SWParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state < alsa.StateSetup {
		return errBadState
	}
	if p.TstampMode != alsa.TstampEnable || p.TstampType != alsa.TstampTypeMonotonic || p.Proto < 2<<16|12 {
		return fmt.Errorf("fake: sw params without monotonic status timestamps: %+v", *p)
	}
	p.Boundary = uint(f.cfg.BufferFrames) << 20
	return nil
}

func (f *Fake) Prepare() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.state < alsa.StateSetup {
		return errBadState
	}
	f.state, f.hw, f.appl = alsa.StatePrepared, 0, 0
	return nil
}

func (f *Fake) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != alsa.StatePrepared {
		return errBadState
	}
	f.state, f.trigger, f.tstamp = alsa.StateRunning, f.mono, f.mono
	return nil
}

func (f *Fake) Drop() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return syscall.EBADF
	}
	f.state = alsa.StateSetup
	return nil
}

// advance moves the clock on by d, capturing whole periods; a full
// buffer overruns. f.mu is held.
func (f *Fake) advance(d time.Duration) {
	f.mono += d
	if f.state != alsa.StateRunning {
		return
	}
	rate, period := int64(f.cfg.Rate), int64(f.cfg.PeriodFrames)
	hw := int64(f.mono-f.trigger) * rate / int64(time.Second) / period * period
	if hw-f.appl >= int64(f.cfg.BufferFrames) {
		hw = f.appl + int64(f.cfg.BufferFrames)
		f.state = alsa.StateXrun
		f.xruns++
	}
	if hw != f.hw {
		f.hw = hw
		f.tstamp = f.trigger + time.Duration(hw*int64(time.Second)/rate)
	}
}

// Stall moves the fake's clock on by d before the next Wait, as if the
// reader were stopped that long.
func (f *Fake) Stall(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stall += d
}

func (f *Fake) Wait(timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return syscall.EBADF
	}
	if f.stall > 0 {
		f.advance(f.stall)
		f.stall = 0
	}
	if f.state != alsa.StateRunning || f.hw-f.appl >= int64(f.cfg.PeriodFrames) {
		return nil // ready, or in an error state the read reports
	}
	// Sleep to the end of the period under way.
	rate, period := int64(f.cfg.Rate), int64(f.cfg.PeriodFrames)
	next := f.trigger + time.Duration((f.hw+period)*int64(time.Second)/rate)
	if (f.hw+period)*int64(time.Second)%rate != 0 {
		next++
	}
	f.advance(next - f.mono)
	return nil
}

func (f *Fake) ReadFrames(buf []byte, frames int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return 0, syscall.EBADF
	case f.state == alsa.StateXrun:
		return 0, alsa.ErrOverrun
	case f.state != alsa.StateRunning:
		return 0, errBadState
	}
	n := int(min(int64(frames), f.hw-f.appl))
	size := f.cfg.Format.Bytes() * f.cfg.Channels
	n = min(n, len(buf)/size)
	if n == 0 {
		return 0, alsa.ErrAgain
	}
	rate := int64(f.cfg.Rate)
	first := int64(f.trigger-f.Uptime)*rate/int64(time.Second) + f.appl
	for i := range n {
		v := uint16((first + int64(i)) & 0x7fff)
		for c := range f.cfg.Channels {
			b := buf[(i*f.cfg.Channels+c)*f.cfg.Format.Bytes():]
			switch f.cfg.Format {
			case alsa.FormatS16LE:
				b[0], b[1] = byte(v), byte(v>>8)
			case alsa.FormatS32LE:
				b[0], b[1], b[2], b[3] = 0x11, 0x22, byte(v), byte(v>>8)
			case alsa.FormatS24_3LE:
				b[0], b[1], b[2] = 0x33, byte(v), byte(v>>8)
			}
		}
	}
	f.appl += int64(n)
	return n, nil
}

// Sample is the value of the frame captured at t on the fake's clock.
func (f *Fake) Sample(t time.Duration) int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int16(int64(t-f.Uptime) * int64(f.cfg.Rate) / int64(time.Second) & 0x7fff)
}

func (f *Fake) Status() (alsa.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return alsa.Status{}, syscall.EBADF
	}
	st := alsa.Status{State: f.state, Trigger: f.trigger, Tstamp: f.tstamp, ApplPtr: uint64(f.appl), HwPtr: uint64(f.hw), Avail: uint64(f.hw - f.appl)}
	if f.NoTstamp {
		st.Tstamp = 0
	}
	return st, nil
}

// MonotonicNow reads the fake's clock.
func (f *Fake) MonotonicNow() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.init()
	return f.mono
}

// Overruns is how many times the buffer filled.
func (f *Fake) Overruns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.xruns
}

func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fake: closed twice")
	}
	f.closed = true
	return nil
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}
