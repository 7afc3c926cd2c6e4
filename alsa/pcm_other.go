//go:build !linux

package alsa

// Open reports that ALSA exists only on Linux (ErrUnsupported).
func Open(name string, opts Options) (*Source, error) {
	return nil, ErrUnsupported
}
