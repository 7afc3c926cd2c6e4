package capture

import "attune.dev/attune/alsa"

// Errors OpenMicrophone wraps, so that a caller can record without audio
// rather than fail.
var (
	// ErrMicrophoneUnsupported: this system cannot record from a
	// microphone (ALSA is Linux only).
	ErrMicrophoneUnsupported = alsa.ErrUnsupported
	// ErrNoMicrophone: the system has no capture device to default to.
	ErrNoMicrophone = alsa.ErrNoDevice
)

// OpenMicrophone opens the ALSA capture device name ("auto" prefers the
// microphone of opts.Camera's USB webcam; see alsa.Find) and starts
// recording from it on the capture clock (Now); see alsa.NewSource.
func OpenMicrophone(name string, opts alsa.Options) (Source, error) {
	opts.Clock = Now
	s, err := alsa.Open(name, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}
