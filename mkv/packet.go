package mkv

import "time"

// Kind says what a track carries.
type Kind int

const (
	Video Kind = iota + 1
	Audio
)

func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return "unknown"
}

// Codec names follow Matroska codec IDs so they can be written unchanged.
const (
	CodecMJPEG  = "V_MJPEG"
	CodecPCMS16 = "A_PCM/INT/LIT" // signed 16-bit little-endian PCM
)

// Track describes one elementary stream.
type Track struct {
	Kind  Kind
	Codec string

	// Video.
	Width, Height int
	FPS           float64 // nominal frame rate; 0 if unknown

	// Audio.
	SampleRate int // Hz
	Channels   int
	BitDepth   int
}

// Packet is one captured unit: a video frame or a run of audio samples.
//
// PTS is the capture time of the first sample in the packet, measured on the
// monotonic clock from the start of the recording (never from the wall clock,
// which a Pi does not have at boot). Data belongs to the receiver once the
// packet is delivered: sources must not reuse it.
type Packet struct {
	Kind Kind
	PTS  time.Duration
	Data []byte
	Key  bool // decodable on its own (always true for MJPEG and PCM)
}
