// Package mov writes QuickTime movies (.mov, brand 'qt  ') of Photo-JPEG
// video and, optionally, 16-bit little-endian PCM sound ('sowt'): the
// recorded MJPEG frames and PCM samples unchanged, in the form macOS's
// QuickTime Player opens without ffmpeg, as do VLC and Windows' players
// with QuickTime support.
//
// The samples go into one 'mdat' as the packets arrive (a 64-bit size, so a
// clip may pass 4 GB); the 'moov' with the sample tables follows at Close,
// with 64-bit chunk offsets ('co64') once they pass 4 GB. Frame durations
// come from the packets' PTS, and an edit list delays the track that starts
// later, so the sound stays in sync with the pictures.
//
// It is a format package: it only writes to the io.WriteSeeker it is given,
// never opens files, logs or keeps time, and imports none of the project's
// packages but mkv, whose packets and tracks it takes.
package mov
