//go:build !linux

package v4l2

import "errors"

// Open reports that V4L2 cameras exist only on linux.
func Open(path string, opts Options) (*Source, error) {
	return nil, errors.New("v4l2: open " + path + ": v4l2 is only available on linux")
}

func v4l2Unplugged(error) bool { return false }
