//go:build !linux || !cgo || !microphone

package capture

import "fmt"

// OpenMicrophone reports that this build has no microphone support. The
// microphone needs linux, cgo and the "microphone" build tag (see
// mic_linux.go for why it is opt-in).
func OpenMicrophone(name string) (Source, error) {
	return nil, fmt.Errorf("%w: it needs linux, cgo and the microphone build tag "+
		"(rebuild with CGO_ENABLED=1 go build -tags microphone), or record without audio", ErrMicrophoneUnsupported)
}
