package capture

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pion/mediadevices/pkg/wave"
)

func pcmSamples(t *testing.T, b []byte) []int16 {
	t.Helper()
	if len(b)%2 != 0 {
		t.Fatalf("odd length %d", len(b))
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// pcmOther is an audio layout the converter has no fast path for.
type pcmOther struct{ s [][2]wave.Sample }

func (a pcmOther) SampleFormat() wave.SampleFormat { return wave.Int16SampleFormat }
func (a pcmOther) ChunkInfo() wave.ChunkInfo {
	return wave.ChunkInfo{Len: len(a.s), Channels: 2, SamplingRate: 48000}
}
func (a pcmOther) At(i, ch int) wave.Sample { return a.s[i][ch] }

func TestAppendMonoS16LE(t *testing.T) {
	info := func(n, ch int) wave.ChunkInfo { return wave.ChunkInfo{Len: n, Channels: ch, SamplingRate: 48000} }
	for _, tc := range []struct {
		name string
		in   wave.Audio
		want []int16
	}{
		{"int16 mono passes through",
			&wave.Int16Interleaved{Data: []int16{0, 1, -1, 32767, -32768, 0x1234}, Size: info(6, 1)},
			[]int16{0, 1, -1, 32767, -32768, 0x1234}},
		{"int16 stereo averaged",
			&wave.Int16Interleaved{Data: []int16{100, 300, -32768, -32768, 32767, 32767, 1000, -1000}, Size: info(4, 2)},
			[]int16{200, -32768, 32767, 0}},
		{"int16 six channels",
			&wave.Int16Interleaved{Data: []int16{6, 6, 6, 6, 6, 6, 60, 0, 0, 0, 0, 0}, Size: info(2, 6)},
			[]int16{6, 10}},
		{"int16 Len beyond data is cut",
			&wave.Int16Interleaved{Data: []int16{1, 2, 3}, Size: info(5, 1)},
			[]int16{1, 2, 3}},
		{"int16 non-interleaved",
			&wave.Int16NonInterleaved{Data: [][]int16{{10, 20}, {30, 40}}, Size: info(2, 2)},
			[]int16{20, 30}},
		{"float mono scaled and clipped",
			&wave.Float32Interleaved{Data: []float32{0, 1, -1, 0.5, 2, -2, float32(math.NaN()), 1.0 / 32767}, Size: info(8, 1)},
			[]int16{0, 32767, -32767, 16384, 32767, -32768, 0, 1}},
		{"float stereo averaged",
			&wave.Float32Interleaved{Data: []float32{1, 0, -0.5, -0.5}, Size: info(2, 2)},
			[]int16{16384, -16384}},
		{"float non-interleaved",
			&wave.Float32NonInterleaved{Data: [][]float32{{1, 0}, {1, -1}}, Size: info(2, 2)},
			[]int16{32767, -16384}},
		{"other layout",
			pcmOther{[][2]wave.Sample{
				{wave.Int16Sample(100), wave.Int16Sample(300)},
				{wave.Float32Sample(0.5), wave.Float32Sample(0.5)},
				{wave.Int64Sample(1000 << 16), wave.Int64Sample(-3000 << 16)},
			}},
			[]int16{200, 16384, -1000}},
		{"empty", &wave.Int16Interleaved{Size: info(0, 2)}, []int16{}},
		{"no channels", &wave.Int16Interleaved{Data: []int16{1}, Size: info(1, 0)}, []int16{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{0xAA}
			out := appendMonoS16LE(prefix, tc.in)
			if out[0] != 0xAA {
				t.Fatal("prefix lost")
			}
			if got := pcmSamples(t, out[1:]); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAppendMonoS16LEBytes(t *testing.T) {
	// Little-endian regardless of the host.
	got := appendMonoS16LE(nil, &wave.Int16Interleaved{Data: []int16{0x1234, -2}, Size: wave.ChunkInfo{Len: 2, Channels: 1}})
	if want := []byte{0x34, 0x12, 0xFE, 0xFF}; !slices.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}

func TestMicChoose(t *testing.T) {
	hexID := func(s string) string {
		const digits = "0123456789abcdef"
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, digits[c>>4], digits[c&15])
		}
		return string(b)
	}
	usb := micDevice{Label: hexID("hw:1,0"), Name: "USB PnP Sound Device"}
	def := micDevice{Label: hexID("default"), Name: "Default Audio Device", Priority: 0.1}
	null := micDevice{Label: hexID("null"), Name: "Discard all samples (playback) or generate zero samples (capture)"}
	maNull := micDevice{Label: "00", Name: "NULL Capture Device", Priority: 0.1}
	hdmi := micDevice{Label: hexID("hw:0,0"), Name: "vc4-hdmi"}

	if usb.ID() != "hw:1,0" || maNull.ID() != "00" {
		t.Errorf("IDs %q %q", usb.ID(), maNull.ID())
	}
	for _, tc := range []struct {
		devs []micDevice
		name string
		want micDevice
		err  string
	}{
		{[]micDevice{null, usb, def}, "", def, ""},
		{[]micDevice{null, usb}, "default", usb, ""},
		{[]micDevice{maNull, null}, "", micDevice{}, `microphone: no capture device found (only "00" (NULL Capture Device), "null" (Discard`},
		{nil, "", micDevice{}, "microphone: no capture device found (is a microphone plugged in?)"},
		{[]micDevice{null, usb}, "null", null, ""},
		{[]micDevice{null, usb}, "hw:1,0", usb, ""},
		{[]micDevice{null, usb}, usb.Label, usb, ""},
		{[]micDevice{null, usb}, "USB PnP Sound Device", usb, ""},
		{[]micDevice{null, usb, hdmi}, "usb", usb, ""},
		{[]micDevice{null, usb, hdmi}, "hw:", micDevice{}, `microphone: "hw:" matches several capture devices: "hw:0,0" (vc4-hdmi), "hw:1,0" (USB PnP Sound Device)`},
		{[]micDevice{null, usb}, "nonsense", micDevice{}, `microphone: no capture device "nonsense" (available: "hw:1,0" (USB PnP Sound Device), "null" (Discard all samples`},
	} {
		got, err := micChoose(tc.devs, tc.name)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("micChoose(%q): %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("micChoose(%q) error = %v, want %s...", tc.name, err, tc.err)
		case got != tc.want:
			t.Errorf("micChoose(%q) = %v, want %v", tc.name, got, tc.want)
		}
		if tc.name == "" && tc.err != "" && !errors.Is(err, ErrNoMicrophone) {
			t.Errorf("micChoose(%q) error does not wrap ErrNoMicrophone", tc.name)
		}
	}
}
