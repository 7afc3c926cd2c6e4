// Package monoclock maps the kernel's capture timestamps, which drivers
// take on CLOCK_MONOTONIC (V4L2 frames, ALSA status), onto a recording's
// clock, and keeps a stream's stamps strictly increasing. The camera
// (v4l2) and the microphone (alsa) share it, so picture and sound are
// stamped by the same rule.
package monoclock
