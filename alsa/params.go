package alsa

import (
	"fmt"
	"time"
)

// Format is an ALSA sample format (snd_pcm_format_t).
type Format uint32

// Sample formats the source records, in order of preference.
const (
	FormatS16LE   Format = 2  // SNDRV_PCM_FORMAT_S16_LE
	FormatS32LE   Format = 10 // SNDRV_PCM_FORMAT_S32_LE
	FormatS24_3LE Format = 32 // SNDRV_PCM_FORMAT_S24_3LE: 24 bits in three bytes
)

var formatNames = map[Format]string{
	0: "S8", 1: "U8", FormatS16LE: "S16_LE", 3: "S16_BE", 4: "U16_LE", 6: "S24_LE",
	FormatS32LE: "S32_LE", 14: "FLOAT_LE", 16: "FLOAT64_LE", FormatS24_3LE: "S24_3LE",
}

func (f Format) String() string {
	if n, ok := formatNames[f]; ok {
		return n
	}
	return fmt.Sprintf("format %d", uint32(f))
}

// Bytes is the size of one sample, or 0 for a format the source does not
// record.
func (f Format) Bytes() int {
	switch f {
	case FormatS16LE:
		return 2
	case FormatS32LE:
		return 4
	case FormatS24_3LE:
		return 3
	}
	return 0
}

// Indexes of HWParams.Masks and HWParams.Intervals (the latter minus
// ParamFirstInterval), as in sound/asound.h.
const (
	ParamAccess    = 0 // SNDRV_PCM_HW_PARAM_ACCESS
	ParamFormat    = 1
	ParamSubformat = 2

	ParamFirstInterval = 8 // SNDRV_PCM_HW_PARAM_SAMPLE_BITS
	ParamSampleBits    = 8
	ParamFrameBits     = 9
	ParamChannels      = 10
	ParamRate          = 11
	ParamPeriodTime    = 12 // µs
	ParamPeriodSize    = 13 // frames
	ParamPeriodBytes   = 14
	ParamPeriods       = 15
	ParamBufferTime    = 16 // µs
	ParamBufferSize    = 17 // frames
	ParamBufferBytes   = 18
	ParamTickTime      = 19
)

// AccessRWInterleaved is SNDRV_PCM_ACCESS_RW_INTERLEAVED: read and write
// calls with interleaved frames.
const AccessRWInterleaved = 3

// Mask is struct snd_mask: a bit per value.
type Mask struct{ Bits [8]uint32 }

// Has reports whether bit v is set.
func (m *Mask) Has(v uint32) bool { return v < 256 && m.Bits[v/32]&(1<<(v%32)) != 0 }

// Only leaves bit v alone set.
func (m *Mask) Only(v uint32) {
	*m = Mask{}
	m.Bits[v/32] = 1 << (v % 32)
}

// Interval flags (the bit fields of struct snd_interval, little-endian).
const (
	IntervalOpenMin = 1 << 0
	IntervalOpenMax = 1 << 1
	IntervalInteger = 1 << 2
	IntervalEmpty   = 1 << 3
)

// Interval is struct snd_interval: a range of values.
type Interval struct {
	Min, Max uint32
	Flags    uint32
}

// Lo and Hi are the least and greatest integers in the interval.
func (i Interval) Lo() uint32 {
	if i.Flags&IntervalOpenMin != 0 {
		return i.Min + 1
	}
	return i.Min
}

func (i Interval) Hi() uint32 {
	if i.Flags&IntervalOpenMax != 0 && i.Max > 0 {
		return i.Max - 1
	}
	return i.Max
}

// Contains reports whether v is in the interval.
func (i Interval) Contains(v uint32) bool {
	return i.Flags&IntervalEmpty == 0 && v >= i.Lo() && v <= i.Hi()
}

// Set makes the interval [min, max].
func (i *Interval) Set(min, max uint32) { *i = Interval{Min: min, Max: max, Flags: IntervalInteger} }

// HWParams is struct snd_pcm_hw_params: the configuration space that
// SNDRV_PCM_IOCTL_HW_REFINE narrows and SNDRV_PCM_IOCTL_HW_PARAMS fixes.
// FifoSize is snd_pcm_uframes_t (unsigned long), so the struct is 608
// bytes with 8-byte words and 604 on 32-bit ARM (TestABILayout).
type HWParams struct {
	Flags     uint32
	Masks     [3]Mask
	Mres      [5]Mask
	Intervals [12]Interval
	Ires      [9]Interval
	Rmask     uint32 // requested: which parameters to refine
	Cmask     uint32 // changed
	Info      uint32
	Msbits    uint32
	RateNum   uint32
	RateDen   uint32
	FifoSize  uint
	Reserved  [64]byte
}

// AnyHWParams is the whole configuration space, as alsa-lib's
// snd_pcm_hw_params_any starts from.
func AnyHWParams() *HWParams {
	p := &HWParams{Rmask: ^uint32(0), Info: ^uint32(0)}
	for i := range p.Masks {
		for j := range p.Masks[i].Bits {
			p.Masks[i].Bits[j] = ^uint32(0)
		}
	}
	for i := range p.Intervals {
		p.Intervals[i] = Interval{Min: 0, Max: ^uint32(0)}
	}
	return p
}

// Mask returns the mask of parameter n (ParamAccess…ParamSubformat).
func (p *HWParams) Mask(n int) *Mask { return &p.Masks[n] }

// Interval returns the interval of parameter n (ParamSampleBits…).
func (p *HWParams) Interval(n int) *Interval { return &p.Intervals[n-ParamFirstInterval] }

// SWParams is struct snd_pcm_sw_params, whose snd_pcm_uframes_t fields are
// unsigned long: 136 bytes with 8-byte words, 104 on 32-bit ARM.
type SWParams struct {
	TstampMode       int32 // SNDRV_PCM_TSTAMP_ENABLE: status timestamps at each pointer update
	PeriodStep       uint32
	SleepMin         uint32
	AvailMin         uint
	XferAlign        uint
	StartThreshold   uint
	StopThreshold    uint
	SilenceThreshold uint
	SilenceSize      uint
	Boundary         uint // set by the kernel
	Proto            uint32
	TstampType       uint32 // SNDRV_PCM_TSTAMP_TYPE_MONOTONIC needs Proto >= 2.0.12
	Reserved         [56]byte
}

// Values for SWParams.
const (
	TstampEnable        = 1                 // SNDRV_PCM_TSTAMP_ENABLE
	TstampTypeMonotonic = 1                 // SNDRV_PCM_TSTAMP_TYPE_MONOTONIC
	ProtocolVersion     = 2<<16 | 0<<8 | 15 // SNDRV_PCM_VERSION 2.0.15
)

// PCM states (snd_pcm_state_t).
const (
	StateOpen         = 0
	StateSetup        = 1
	StatePrepared     = 2
	StateRunning      = 3
	StateXrun         = 4
	StateDraining     = 5
	StatePaused       = 6
	StateSuspended    = 7
	StateDisconnected = 8
)

// Status is what SNDRV_PCM_IOCTL_STATUS reports, with the timestamps on
// CLOCK_MONOTONIC (the source asks for it in its SWParams).
type Status struct {
	State   uint32
	Trigger time.Duration // when the stream was started (or stopped)
	Tstamp  time.Duration // when HwPtr was last updated; 0 if the driver gives none
	ApplPtr uint64
	HwPtr   uint64
	Avail   uint64 // frames ready to read
}
