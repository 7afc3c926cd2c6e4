//go:build linux && cgo && microphone

// The microphone is opt-in: build with -tags microphone (and cgo). Two
// reasons:
//
//   - github.com/pion/mediadevices/pkg/driver/microphone needs
//     github.com/gen2brain/malgo (miniaudio, cgo), which go.mod/go.sum must
//     list (go get github.com/gen2brain/malgo@v0.11.24).
//   - Importing that package runs an init() that sets up miniaudio and lists
//     the capture devices, and it panics if either fails: the whole process
//     dies before main, even when no microphone is wanted. On a machine with
//     no sound hardware it does not fail (ALSA lists its "null" PCM, and
//     without any sound library miniaudio falls back to its null backend),
//     but a corrupt ALSA configuration (~/.asoundrc, /etc/asound.conf) makes
//     the device listing fail with "miniaudio: Invalid argument", and then
//     the init panics. It also writes ALSA's complaints to stderr.

package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"attune.dev/attune/mkv"
	"github.com/pion/mediadevices/pkg/driver"
	_ "github.com/pion/mediadevices/pkg/driver/microphone" // registers devices in init; see above
	"github.com/pion/mediadevices/pkg/io/audio"
	"github.com/pion/mediadevices/pkg/prop"
	"github.com/pion/mediadevices/pkg/wave"
)

// Format of the microphone track.
const (
	micRate     = 48000
	micChannels = 1
	micBits     = 16
)

const (
	micPeriod    = 20 * time.Millisecond  // miniaudio period: one packet
	micStall     = 5 * time.Second        // no audio for this long is an error
	micCloseWait = 250 * time.Millisecond // see Close
	micQueue     = 100                    // packets (2 s) between reader and Next
)

var errMicClosed = fmt.Errorf("microphone: %w", os.ErrClosed)

// OpenMicrophone records from a capture device through miniaudio (ALSA or
// PulseAudio) as 48 kHz mono signed 16-bit PCM; miniaudio converts the rate
// and mixes the channels down. name "" or "default" is the system's default
// capture device, or the first one; otherwise name is a device ID (for ALSA
// such as "hw:1,0"), its name, or part of exactly one of these. Devices that
// only record silence (ALSA's "null", miniaudio's null backend) are used
// only when named. The error for an unknown name lists the devices.
//
// Packets hold one period (about 20 ms) each, stamped with Now() when read
// minus their duration.
func OpenMicrophone(name string) (Source, error) {
	drivers := driver.GetManager().Query(driver.FilterAnd(
		driver.FilterAudioRecorder(), driver.FilterDeviceType(driver.Microphone)))
	devs := make([]micDevice, len(drivers))
	byLabel := make(map[string]driver.Driver, len(drivers))
	for i, d := range drivers {
		info := d.Info()
		devs[i] = micDevice{Label: info.Label, Name: info.Name, Priority: float32(info.Priority)}
		byLabel[info.Label] = d
	}
	dev, err := micChoose(devs, name)
	if err != nil {
		return nil, err
	}
	d := byLabel[dev.Label]
	rec, ok := d.(driver.AudioRecorder)
	if !ok {
		return nil, fmt.Errorf("microphone: %v cannot record", dev)
	}
	if err := d.Open(); err != nil {
		return nil, fmt.Errorf("microphone: open %v: %w", dev, err)
	}
	r, err := rec.AudioRecord(prop.Media{Audio: prop.Audio{
		ChannelCount:  micChannels,
		SampleRate:    micRate,
		SampleSize:    micBits / 8,
		IsInterleaved: true,
		Latency:       micPeriod,
	}})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("microphone: start %v: %w", dev, err)
	}
	s := &micSource{
		d:       d,
		name:    dev.String(),
		packets: make(chan micResult, micQueue),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.run(r)
	return s, nil
}

type micResult struct {
	p   mkv.Packet
	err error
}

type micSource struct {
	d    driver.Driver
	name string

	packets chan micResult
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when run returns

	closeOnce  sync.Once
	driverOnce sync.Once
	closeErr   error // set under driverOnce

	nextMu sync.Mutex
	err    error // sticky read error, under nextMu
}

func (s *micSource) Tracks() []mkv.Track {
	return []mkv.Track{{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: micRate, Channels: micChannels, BitDepth: micBits}}
}

// run reads the driver until Close or an error. It alone calls the driver's
// Read, and it closes the driver itself when it is done: mediadevices'
// microphone is not safe to close while a Read is under way (Close sets the
// channel Read receives from to nil, and a Read that starts after that
// blocks forever).
func (s *micSource) run(r audio.Reader) {
	defer close(s.stopped)
	defer s.closeDriver()
	last := time.Duration(math.MinInt64)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		chunk, release, err := micRead(r)
		at := Now()
		select {
		case <-s.done:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("device stopped")
			}
			s.send(micResult{err: fmt.Errorf("microphone: read %s: %w", s.name, err)})
			return
		}
		info := chunk.ChunkInfo()
		if info.SamplingRate != 0 && info.SamplingRate != micRate {
			release()
			s.send(micResult{err: fmt.Errorf("microphone: read %s: got %d Hz, want %d", s.name, info.SamplingRate, micRate)})
			return
		}
		data := appendMonoS16LE(make([]byte, 0, 2*max(info.Len, 0)), chunk)
		release()
		if len(data) == 0 {
			continue
		}
		pts := at - time.Duration(len(data)/2)*time.Second/micRate
		if pts <= last { // keep PTS strictly increasing despite scheduling jitter
			pts = last + time.Microsecond
		}
		last = pts
		if !s.send(micResult{p: mkv.Packet{Kind: mkv.Audio, PTS: pts, Data: data, Key: true}}) {
			return
		}
	}
}

// micRead reads one chunk, turning a panic in the driver (it panics on a
// chunk it cannot decode) into an error.
func micRead(r audio.Reader) (chunk wave.Audio, release func(), err error) {
	defer func() {
		if p := recover(); p != nil {
			chunk, release, err = nil, nil, fmt.Errorf("driver panicked: %v", p)
		}
	}()
	chunk, release, err = r.Read()
	if err != nil {
		return nil, nil, err
	}
	if chunk == nil {
		return nil, nil, errors.New("driver returned no audio")
	}
	if release == nil {
		release = func() {}
	}
	return chunk, release, nil
}

func (s *micSource) send(r micResult) bool {
	select {
	case s.packets <- r:
		return true
	case <-s.done:
		return false
	}
}

func (s *micSource) closeDriver() {
	s.driverOnce.Do(func() {
		if err := s.d.Close(); err != nil {
			s.closeErr = fmt.Errorf("microphone: close %s: %w", s.name, err)
		}
	})
}

// Next returns the next period of audio. Five seconds without any is an
// error (miniaudio stops delivering when a USB microphone is pulled).
func (s *micSource) Next(ctx context.Context) (mkv.Packet, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	if s.err != nil {
		return mkv.Packet{}, s.err
	}
	select {
	case <-s.done:
		return mkv.Packet{}, errMicClosed
	default:
	}
	t := time.NewTimer(micStall)
	defer t.Stop()
	select {
	case r := <-s.packets:
		if r.err != nil {
			s.err = r.err
			return mkv.Packet{}, r.err
		}
		return r.p, nil
	case <-s.done:
		return mkv.Packet{}, errMicClosed
	case <-ctx.Done():
		return mkv.Packet{}, ctx.Err()
	case <-t.C:
		return mkv.Packet{}, fmt.Errorf("microphone: no audio for %v (is the microphone unplugged?)", micStall)
	}
}

// Close stops the device and makes Next return. The reader goroutine closes
// the device after its current read, which a live device ends within a
// period; if none comes in micCloseWait (the device hangs), Close closes it
// from here, which ends the read.
func (s *micSource) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		t := time.NewTimer(micCloseWait)
		defer t.Stop()
		select {
		case <-s.stopped:
		case <-t.C:
			s.closeDriver()
		}
	})
	return s.closeErr
}
