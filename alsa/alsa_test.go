package alsa_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/alsa"
	"attune.dev/attune/alsa/alsatest"
	"attune.dev/attune/mkv"
)

// open starts a source on f, whose clock reads the fake's CLOCK_MONOTONIC
// minus its uptime plus 5 s.
func open(t *testing.T, f *alsatest.Fake, opts alsa.Options) *alsa.Source {
	t.Helper()
	f.MonotonicNow() // fixes Uptime
	opts.Clock = func() time.Duration { return f.MonotonicNow() - f.Uptime + 5*time.Second }
	s, err := alsa.NewSource(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// onClock is the recording-clock time of fake time m.
func onClock(f *alsatest.Fake, m time.Duration) time.Duration { return m - f.Uptime + 5*time.Second }

func next(t *testing.T, s *alsa.Source) mkv.Packet {
	t.Helper()
	p, err := s.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fake    *alsatest.Fake
		want    alsa.Config // Format, Channels, Rate
		wantErr string
	}{
		{name: "s16 mono 48k", fake: &alsatest.Fake{Formats: []alsa.Format{alsa.FormatS32LE, alsa.FormatS16LE}, Rates: []uint32{16000, 48000}},
			want: alsa.Config{Format: alsa.FormatS16LE, Channels: 1, Rate: 48000}},
		{name: "s32 stereo only", fake: &alsatest.Fake{Formats: []alsa.Format{alsa.FormatS32LE}, Rates: []uint32{44100}, ChannelsMin: 2, ChannelsMax: 2},
			want: alsa.Config{Format: alsa.FormatS32LE, Channels: 2, Rate: 44100}},
		{name: "s24_3 16k", fake: &alsatest.Fake{Formats: []alsa.Format{alsa.FormatS24_3LE}, Rates: []uint32{16000}},
			want: alsa.Config{Format: alsa.FormatS24_3LE, Channels: 1, Rate: 16000}},
		{name: "odd rates: the highest", fake: &alsatest.Fake{Rates: []uint32{8000, 22050}},
			want: alsa.Config{Format: alsa.FormatS16LE, Channels: 1, Rate: 22050}},
		{name: "four channels", fake: &alsatest.Fake{ChannelsMin: 4, ChannelsMax: 4},
			want: alsa.Config{Format: alsa.FormatS16LE, Channels: 4, Rate: 48000}},
		{name: "float only", fake: &alsatest.Fake{Formats: []alsa.Format{14}}, wantErr: "no S16_LE, S32_LE or S24_3LE samples (only [FLOAT_LE])"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.MonotonicNow()
			s, err := alsa.NewSource(f, alsa.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !f.Closed() {
					t.Error("a failed NewSource left the device open")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := s.Config()
			if got.Format != tc.want.Format || got.Channels != tc.want.Channels || got.Rate != tc.want.Rate {
				t.Fatalf("config = %v, want %v", got, tc.want)
			}
			if got.PeriodFrames != got.Rate/50 || got.BufferFrames != 2*got.Rate {
				t.Errorf("config = %v, want a 20 ms period and a 2 s buffer", got)
			}
			tr := s.Tracks()
			if len(tr) != 1 || tr[0].Codec != mkv.CodecPCMS16 || tr[0].BitDepth != 16 || tr[0].SampleRate != got.Rate || tr[0].Channels != got.Channels {
				t.Fatalf("tracks = %+v", tr)
			}
			// Samples are cut to 16 bits: each channel carries the frame's
			// index, which the fake puts in the top 16 bits.
			p := next(t, s)
			if len(p.Data) != got.PeriodFrames*got.Channels*2 {
				t.Fatalf("packet of %d bytes, want %d", len(p.Data), got.PeriodFrames*got.Channels*2)
			}
			for i := range 3 {
				for c := range got.Channels {
					v := int16(binary.LittleEndian.Uint16(p.Data[(i*got.Channels+c)*2:]))
					if want := f.Sample(f.Uptime) + int16(i); v != want {
						t.Fatalf("frame %d channel %d = %d, want %d", i, c, v, want)
					}
				}
			}
		})
	}
}

// After a stall the device's buffer rides out, stamps carry on from the
// frame count: every chunk starts where the last ended, each stamped with
// when its first frame was captured, not when it was read.
func TestStallContinuity(t *testing.T) {
	f := &alsatest.Fake{}
	s := open(t, f, alsa.Options{})
	var prevEnd time.Duration
	var lastSample int16
	for i := range 60 {
		if i == 10 {
			f.Stall(700 * time.Millisecond)
		}
		p := next(t, s)
		frames := len(p.Data) / 2
		if i == 0 {
			if want := onClock(f, f.Uptime); p.PTS != want {
				t.Fatalf("first chunk at %v, want %v (the trigger)", p.PTS, want)
			}
		} else {
			if p.PTS != prevEnd {
				t.Fatalf("chunk %d at %v, want %v (where the last ended)", i, p.PTS, prevEnd)
			}
			if v := int16(binary.LittleEndian.Uint16(p.Data)); v != lastSample+1 {
				t.Fatalf("chunk %d starts with frame %d, want %d: frames lost", i, v, lastSample+1)
			}
		}
		lastSample = int16(binary.LittleEndian.Uint16(p.Data[len(p.Data)-2:]))
		prevEnd = p.PTS + time.Duration(frames)*time.Second/48000
	}
	// The chunks read right after the stall were captured during it.
	if read := onClock(f, f.MonotonicNow()); read-prevEnd > 100*time.Millisecond {
		t.Errorf("50 chunks after the stall, the stamps end at %v but the clock reads %v", prevEnd, read)
	}
	if st := s.Stats(); st.Overruns != 0 || st.Resyncs != 0 || st.Nudged != 0 || st.Chunks != 60 {
		t.Errorf("stats = %+v, want 60 chunks, no overruns, resyncs or nudges", st)
	}
}

// A stall longer than the buffer overruns the device: the source prepares
// it again, counts and reports the overrun, and stamps the next chunk from
// the status timestamp, so the gap shows in the stamps.
func TestOverrunRecovered(t *testing.T) {
	f := &alsatest.Fake{}
	var reported []alsa.Overrun
	s := open(t, f, alsa.Options{OnOverrun: func(o alsa.Overrun) { reported = append(reported, o) }})
	var end time.Duration
	for range 5 {
		p := next(t, s)
		end = p.PTS + time.Duration(len(p.Data)/2)*time.Second/48000
	}
	stalledAt := f.MonotonicNow()
	f.Stall(3 * time.Second)
	p := next(t, s)
	if f.Overruns() != 1 {
		t.Fatalf("the fake overran %d times, want 1", f.Overruns())
	}
	if st := s.Stats(); st.Overruns != 1 || s.Overruns() != 1 {
		t.Fatalf("stats = %+v, want 1 overrun", st)
	}
	// The stream restarted when the reader came back, 3 s after the stall.
	if want := onClock(f, stalledAt+3*time.Second); p.PTS != want {
		t.Errorf("first chunk after the overrun at %v, want %v (the restart)", p.PTS, want)
	}
	if v, want := int16(binary.LittleEndian.Uint16(p.Data)), f.Sample(stalledAt+3*time.Second); v != want {
		t.Errorf("first frame after the overrun is %d, want %d", v, want)
	}
	if len(reported) != 1 || reported[0].Count != 1 || reported[0].Gap != p.PTS-end {
		t.Errorf("reported %+v, want one overrun with a gap of %v", reported, p.PTS-end)
	}
	// It records on.
	prev := p
	for range 10 {
		p := next(t, s)
		if p.PTS != prev.PTS+time.Duration(len(prev.Data)/2)*time.Second/48000 {
			t.Fatalf("after recovery: chunk at %v follows one at %v", p.PTS, prev.PTS)
		}
		prev = p
	}
}

// A driver without status timestamps: chunks are stamped when read, back
// by what was waiting, and still strictly increase.
func TestUntimed(t *testing.T) {
	f := &alsatest.Fake{NoTstamp: true}
	s := open(t, f, alsa.Options{})
	var last time.Duration = -1
	for range 5 {
		p := next(t, s)
		if p.PTS <= last {
			t.Fatalf("stamp %v after %v", p.PTS, last)
		}
		last = p.PTS
	}
	if st := s.Stats(); st.Untimed != 5 {
		t.Errorf("stats = %+v, want 5 untimed", st)
	}
}

func TestCloseEndsNext(t *testing.T) {
	f := &alsatest.Fake{}
	s := open(t, f, alsa.Options{})
	next(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close: %v, want os.ErrClosed", err)
	}
	if !f.Closed() {
		t.Error("device not closed")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// sysfs builds a fake /sys: a USB webcam (1-1) with its camera (video0)
// and microphone (card 1), the loopback card 0 and a virtual camera
// (video10, v4l2loopback), with class links as the kernel makes them.
func sysfs(t *testing.T) string {
	root := t.TempDir()
	mk := func(dir string, files map[string]string) {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for n, v := range files {
			os.WriteFile(filepath.Join(root, dir, n), []byte(v+"\n"), 0o644)
		}
	}
	link := func(class, target string) {
		os.MkdirAll(filepath.Join(root, filepath.Dir(class)), 0o755)
		rel, _ := filepath.Rel(filepath.Join(root, filepath.Dir(class)), filepath.Join(root, target))
		if err := os.Symlink(rel, filepath.Join(root, class)); err != nil {
			t.Fatal(err)
		}
	}
	usb := "devices/platform/soc/usb1/1-1"
	mk(usb, map[string]string{"idVendor": "046d", "idProduct": "082d"})
	mk(usb+"/1-1:1.0/video4linux/video0", map[string]string{"name": "HD Pro Webcam C920"})
	mk(usb+"/1-1:1.2/sound/card1/pcmC1D0c", nil)
	mk(usb+"/1-1:1.2/sound/card1", map[string]string{"id": "C920"})
	mk("devices/platform/snd_aloop.0/sound/card0", map[string]string{"id": "Loopback"})
	mk("devices/platform/snd_aloop.0/sound/card0/pcmC0D0c", nil)
	mk("devices/platform/snd_aloop.0/sound/card0/pcmC0D0p", nil)
	mk("devices/platform/snd_aloop.0/sound/card0/pcmC0D1c", nil)
	mk("devices/virtual/video4linux/video10", map[string]string{"name": "hil-loop"})
	link("class/video4linux/video0", usb+"/1-1:1.0/video4linux/video0")
	link("class/video4linux/video10", "devices/virtual/video4linux/video10")
	link("class/sound/card1", usb+"/1-1:1.2/sound/card1")
	link("class/sound/pcmC1D0c", usb+"/1-1:1.2/sound/card1/pcmC1D0c")
	link("class/sound/card0", "devices/platform/snd_aloop.0/sound/card0")
	for _, p := range []string{"pcmC0D0c", "pcmC0D0p", "pcmC0D1c"} {
		link("class/sound/"+p, "devices/platform/snd_aloop.0/sound/card0/"+p)
	}
	return root
}

func TestFind(t *testing.T) {
	sys := sysfs(t)
	opts := alsa.Options{SysRoot: sys, DevRoot: "/dev"}
	for _, tc := range []struct {
		name, camera, want, wantErr string
	}{
		{name: "auto", camera: "/dev/video0", want: "/dev/snd/pcmC1D0c"},    // the webcam's own, though not card 0
		{name: "", camera: "/dev/video0", want: "/dev/snd/pcmC1D0c"},        // "" is auto
		{name: "auto", camera: "/dev/video10", want: "/dev/snd/pcmC0D0c"},   // a virtual camera: the first capture device
		{name: "auto", want: "/dev/snd/pcmC0D0c"},                           // no camera
		{name: "default", camera: "/dev/video0", want: "/dev/snd/pcmC0D0c"}, // default ignores the camera
		{name: "hw:Loopback,1", want: "/dev/snd/pcmC0D1c"},                  // by card id
		{name: "hw:1", want: "/dev/snd/pcmC1D0c"},                           // by number, first device
		{name: "hw:C920,0", want: "/dev/snd/pcmC1D0c"},
		{name: "/dev/snd/pcmC5D0c", want: "/dev/snd/pcmC5D0c"},
		{name: "hw:2,0", wantErr: "no capture device hw:2,0 (available: hw:0,0 (Loopback), hw:0,1 (Loopback), hw:1,0 (C920))"},
		{name: "hw:0,x", wantErr: "not a number"},
		{name: "mic", wantErr: "use auto, default, hw:CARD,DEV"},
	} {
		o := opts
		o.Camera = tc.camera
		got, err := alsa.Find(tc.name, o)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Find(%q) = %q, %v; want error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Find(%q, camera %q) = %q, %v; want %q", tc.name, tc.camera, got, err, tc.want)
		}
	}
	// No sound cards at all.
	if _, err := alsa.Find("auto", alsa.Options{SysRoot: t.TempDir()}); !errors.Is(err, alsa.ErrNoDevice) {
		t.Errorf("Find with no cards: %v, want ErrNoDevice", err)
	}
}
