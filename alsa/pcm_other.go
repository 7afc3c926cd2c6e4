//go:build !linux

package alsa

import "errors"

// Open reports that ALSA exists only on Linux.
func Open(name string, opts Options) (*Source, error) {
	return nil, errors.New("alsa: sound capture needs Linux")
}
