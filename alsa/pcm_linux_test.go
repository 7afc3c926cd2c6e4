package alsa

import (
	"runtime"
	"testing"
	"unsafe"
)

// The ioctl structs match sound/asound.h for each GOARCH the device runs:
// struct snd_pcm_hw_params, snd_pcm_sw_params, snd_pcm_status (with the
// userspace timespec, 32-bit on arm) and snd_xferi, and the ioctl numbers
// built from their sizes.
func TestABILayout(t *testing.T) {
	type layout struct {
		hw, hwFifo, sw, swAvailMin, swProto, status, stTrigger, stTstamp, stAppl, stHw, stAvail, stAudio, stAccuracy, xferi uintptr
		refine, hwParams, swParams, statusIoctl, readi, writei                                                              uintptr
	}
	want, ok := map[string]layout{
		"amd64": {608, 536, 136, 16, 72, 152, 8, 24, 40, 48, 64, 96, 128, 24,
			0xc2604110, 0xc2604111, 0xc0884113, 0x80984120, 0x80184151, 0x40184150},
		"arm64": {608, 536, 136, 16, 72, 152, 8, 24, 40, 48, 64, 96, 128, 24,
			0xc2604110, 0xc2604111, 0xc0884113, 0x80984120, 0x80184151, 0x40184150},
		"arm": {604, 536, 104, 12, 40, 108, 4, 12, 20, 24, 32, 52, 68, 12,
			0xc25c4110, 0xc25c4111, 0xc0684113, 0x806c4120, 0x800c4151, 0x400c4150},
	}[runtime.GOARCH]
	if !ok {
		t.Skipf("no kernel ABI values for %s", runtime.GOARCH)
	}
	var hw HWParams
	var sw SWParams
	var st pcmStatus
	got := layout{
		unsafe.Sizeof(hw), unsafe.Offsetof(hw.FifoSize), unsafe.Sizeof(sw), unsafe.Offsetof(sw.AvailMin), unsafe.Offsetof(sw.Proto),
		unsafe.Sizeof(st), unsafe.Offsetof(st.triggerTstamp), unsafe.Offsetof(st.tstamp), unsafe.Offsetof(st.applPtr),
		unsafe.Offsetof(st.hwPtr), unsafe.Offsetof(st.avail), unsafe.Offsetof(st.audioTstamp), unsafe.Offsetof(st.audioTstampAccuracy),
		unsafe.Sizeof(xferi{}),
		ioctlHWRefine, ioctlHWParams, ioctlSWParams, ioctlStatus, ioctlReadI, ioctlWriteI,
	}
	if got != want {
		t.Errorf("ALSA ABI on %s:\n got %+v\nwant %+v", runtime.GOARCH, got, want)
	}
	if o := unsafe.Offsetof(hw.Intervals); o != 260 {
		t.Errorf("snd_pcm_hw_params.intervals at %d, want 260", o)
	}
	if o := unsafe.Offsetof(hw.Rmask); o != 512 {
		t.Errorf("snd_pcm_hw_params.rmask at %d, want 512", o)
	}
}
