package capture

import "attune.dev/attune/v4l2"

// OpenV4L2 opens a V4L2 camera such as /dev/video0 and starts recording from
// it on the capture clock (Now); see v4l2.NewSource.
func OpenV4L2(path string, opts v4l2.Options) (Source, error) {
	opts.Clock = Now
	s, err := v4l2.Open(path, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}
