// Package alsa records sound from an ALSA capture device in pure Go, with
// the kernel's PCM ioctls on /dev/snd/pcmC*D*c (no alsa-lib, no cgo), so
// the static attuned records sound. It negotiates the device's native rate
// and format (S16_LE preferred; S32_LE and S24_3LE are cut to 16 bits,
// which the recording's PCM track carries), mono or stereo as the device
// has, reads interleaved frames with SNDRV_PCM_IOCTL_READI_FRAMES, recovers
// from overruns (EPIPE: PREPARE, START, counted, reported) and delivers mkv
// packets stamped from the kernel's status timestamp (CLOCK_MONOTONIC)
// mapped onto the recorder's clock by monoclock, the rule the camera uses.
// Find picks the device: the webcam's own USB microphone, found in sysfs,
// or the first capture device.
//
// The device is behind the Device interface; alsatest has its fake. Only
// pcm_linux.go talks to the kernel; other systems get a stub, so the
// package builds everywhere. It never writes to disk, never logs, and must
// never be imported by the laptop side.
package alsa
