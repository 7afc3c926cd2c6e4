// Package mkv is the Matroska vocabulary shared by the device and the
// laptop: packets and tracks, the live writer (an unknown-size Segment of
// about one-second Clusters, with a flush point before each Cluster), the
// finalizing writer (known sizes, Cues, Duration, Chapters) and the
// streaming reader. Both writers build their elements with the one EBML
// writer in ebml.go.
//
// It is a format package: it never opens files, touches devices, encrypts,
// logs or keeps time, and it imports none of the project's other packages
// except the internal demux helpers it shares with the AVI reader. Whatever
// it writes goes to the io.Writer it is given.
package mkv
