package system

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"attune.dev/attune/alsa"
	"attune.dev/attune/capture"
	"attune.dev/attune/v4l2"
)

// SourceSpec says where a recording's video and audio come from.
type SourceSpec struct {
	Video string // "testsrc", "file:PATH", "v4l2:/dev/videoN"
	Audio string // "auto", "none", "testsrc", "alsa:NAME"
	Pace  capture.Pace
	Modes []v4l2.Mode
}

// OpenSources opens the sources of spec. "auto" audio means the tone with
// the test source, the file's own audio with a file, and with a camera its
// own USB microphone, else the first capture device (alsa.Find) — or no
// audio, with a warning, when the board has no microphone. An explicit
// "alsa:NAME" that cannot be opened is an error ("alsa:" is "alsa:auto").
// Overruns are logged as they happen.
func OpenSources(spec SourceSpec, log *slog.Logger) ([]capture.Source, error) {
	if err := CheckSource(spec.Video); err != nil {
		return nil, fmt.Errorf("open sources: %v", err)
	}
	if err := CheckAudio(spec.Audio); err != nil {
		return nil, fmt.Errorf("open sources: %v", err)
	}
	audio := spec.Audio
	var srcs []capture.Source
	switch {
	case spec.Video == "testsrc":
		srcs = append(srcs, capture.NewPatternSource(spec.Pace))
		if audio == "auto" {
			audio = "testsrc"
		}
	case strings.HasPrefix(spec.Video, "file:"):
		withFileAudio := audio == "auto"
		src, err := capture.OpenFile(strings.TrimPrefix(spec.Video, "file:"), spec.Pace, withFileAudio)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
		if audio == "auto" {
			audio = "none" // the file's own audio, if any, is already in src
		}
	case strings.HasPrefix(spec.Video, "v4l2:"):
		src, err := capture.OpenV4L2(strings.TrimPrefix(spec.Video, "v4l2:"), v4l2.Options{Prefer: spec.Modes})
		if err != nil {
			return nil, deviceAccess(err, "video")
		}
		srcs = append(srcs, src)
		if audio == "auto" {
			audio = "alsa:auto"
		}
	}
	switch {
	case audio == "none":
	case audio == "testsrc":
		srcs = append(srcs, capture.NewToneSource(spec.Pace))
	case strings.HasPrefix(audio, "alsa:"):
		opts := alsa.Options{OnOverrun: func(o alsa.Overrun) {
			if log != nil {
				log.Warn("audio overrun: sound lost", "overruns", o.Count, "gap_ms", o.Gap.Milliseconds())
			}
		}}
		if cam, ok := strings.CutPrefix(spec.Video, "v4l2:"); ok {
			opts.Camera = cam
		}
		mic, err := capture.OpenMicrophone(strings.TrimPrefix(audio, "alsa:"), opts)
		if err != nil && spec.Audio == "auto" &&
			(errors.Is(err, capture.ErrMicrophoneUnsupported) || errors.Is(err, capture.ErrNoMicrophone)) {
			if log != nil {
				log.Warn("recording video without audio", "reason", err)
			}
			break
		}
		if err != nil {
			closeSources(srcs)
			return nil, deviceAccess(err, "audio")
		}
		srcs = append(srcs, mic)
	}
	return srcs, nil
}

// deviceAccess adds to a refused device open the group that grants it:
// the daemon runs as its own unprivileged user (attune, in the groups
// gpio, video, audio, i2c and spi), not as root.
func deviceAccess(err error, group string) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: the daemon's user must be in group %s (the package's attune user is; else usermod -aG %s USER)", err, group, group)
	}
	return err
}

func closeSources(srcs []capture.Source) {
	for _, s := range srcs {
		s.Close()
	}
}
