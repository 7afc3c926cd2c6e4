// Package capture turns a camera and a microphone (or a test or file source)
// into one live Matroska stream with flush points about every second.
//
// Sources deliver timestamped packets; the Pipeline interleaves them by
// capture time and mkv.LiveWriter writes them as Matroska Clusters, handing each
// finished cluster boundary to a Sink so that storage can seal it.
//
// This package never writes to disk: the stream it produces is plaintext and
// may only leave it through a Sink, which encrypts before anything is stored.
// MJPEG frames from a webcam pass through untouched.
package capture
