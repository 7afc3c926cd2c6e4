// Package avi is a streaming reader of AVI files (RIFF 'AVI ', with OpenDML
// 'AVIX' extensions) holding MJPEG video and, optionally, 16-bit PCM audio.
// It delivers the frames and audio chunks as mkv packets, so a recording
// replayed from an AVI file is the same stream as one from a camera.
//
// It is a format package: it only reads the io.Reader it is given, never
// opens files, touches devices, logs or keeps time, holds at most one chunk
// in memory and never allocates trusting a size field beyond
// demux.MaxElement.
package avi
