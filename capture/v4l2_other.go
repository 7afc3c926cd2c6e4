//go:build !linux

package capture

import "errors"

// OpenV4L2 reports that V4L2 cameras exist only on linux.
func OpenV4L2(path string, opts V4L2Options) (Source, error) {
	return nil, errors.New("v4l2: open " + path + ": v4l2 is only available on linux")
}

func v4l2Unplugged(error) bool { return false }
