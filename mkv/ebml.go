package mkv

import (
	"io"
	"time"

	"github.com/at-wat/ebml-go"
)

// This file is the one EBML writer of the package: the live writer and the
// finalizing writer both build their elements here. Structured elements are
// marshalled by ebml-go from the struct tags below; the headers of elements
// written around streamed data (Segment, Cluster, SimpleBlock, Void) are
// built by hand so the frames pass through without being copied into a
// marshalling buffer.

// Element IDs, with their length markers.
const (
	eidEBML             = 0x1A45DFA3
	eidDocType          = 0x4282
	eidSegment          = 0x18538067
	eidSeekHead         = 0x114D9B74
	eidInfo             = 0x1549A966
	eidTimecodeScale    = 0x2AD7B1
	eidTracks           = 0x1654AE6B
	eidTrackEntry       = 0xAE
	eidTrackNumber      = 0xD7
	eidTrackType        = 0x83
	eidFlagEnabled      = 0xB9
	eidCodecID          = 0x86
	eidCodecPrivate     = 0x63A2
	eidDefaultDuration  = 0x23E383
	eidContentEncodings = 0x6D80
	eidVideo            = 0xE0
	eidPixelWidth       = 0xB0
	eidPixelHeight      = 0xBA
	eidAudio            = 0xE1
	eidSamplingFreq     = 0xB5
	eidChannels         = 0x9F
	eidBitDepth         = 0x6264
	eidCluster          = 0x1F43B675
	eidTimecode         = 0xE7
	eidSimpleBlock      = 0xA3
	eidBlockGroup       = 0xA0
	eidBlock            = 0xA1
	eidCues             = 0x1C53BB6B
	eidAttachments      = 0x1941A469
	eidChapters         = 0x1043A770
	eidTags             = 0x1254C367
	eidVoid             = 0xEC
)

// Matroska track types.
const (
	trackTypeVideo = 1
	trackTypeAudio = 2
)

// TimecodeScale is the Matroska timestamp unit both writers use: 1 ms.
const TimecodeScale = time.Millisecond

// Matroska structures, declared here rather than taken from ebml-go's webm
// package because webm's Audio lacks BitDepth and DocType must be "matroska"
// for V_MJPEG and PCM.
type ebmlHeader struct {
	EBMLVersion        uint64 `ebml:"EBMLVersion"`
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeVersion     uint64 `ebml:"EBMLDocTypeVersion"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

// liveInfo is the Info of a live stream, whose length is not known.
type liveInfo struct {
	TimecodeScale uint64 `ebml:"TimecodeScale"`
	MuxingApp     string `ebml:"MuxingApp"`
	WritingApp    string `ebml:"WritingApp"`
}

// fileInfo is the Info of a finalized file.
type fileInfo struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	Duration      float64   `ebml:"Duration"` // always 8 bytes: patched in place
	DateUTC       time.Time `ebml:"DateUTC,omitempty,size=8"`
	Title         string    `ebml:"Title,omitempty"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
}

type videoSettings struct {
	PixelWidth  uint64 `ebml:"PixelWidth"`
	PixelHeight uint64 `ebml:"PixelHeight"`
}

type audioSettings struct {
	SamplingFrequency float64 `ebml:"SamplingFrequency"`
	Channels          uint64  `ebml:"Channels"`
	BitDepth          uint64  `ebml:"BitDepth,omitempty"`
}

type trackEntry struct {
	TrackNumber     uint64         `ebml:"TrackNumber"`
	TrackUID        uint64         `ebml:"TrackUID"`
	TrackType       uint64         `ebml:"TrackType"`
	FlagLacing      uint64         `ebml:"FlagLacing"`
	Language        string         `ebml:"Language,omitempty"`
	CodecID         string         `ebml:"CodecID"`
	DefaultDuration uint64         `ebml:"DefaultDuration,omitempty"`
	Video           *videoSettings `ebml:"Video,omitempty"`
	Audio           *audioSettings `ebml:"Audio,omitempty"`
}

type seekEntry struct {
	SeekID       []byte `ebml:"SeekID"`
	SeekPosition uint64 `ebml:"SeekPosition"`
}

type cueTrackPositions struct {
	CueTrack            uint64 `ebml:"CueTrack"`
	CueClusterPosition  uint64 `ebml:"CueClusterPosition"`
	CueRelativePosition uint64 `ebml:"CueRelativePosition"`
}

type cuePoint struct {
	CueTime           uint64            `ebml:"CueTime"`
	CueTrackPositions cueTrackPositions `ebml:"CueTrackPositions"`
}

type chapterDisplay struct {
	ChapString   string `ebml:"ChapString"`
	ChapLanguage string `ebml:"ChapLanguage"`
}

type chapterAtom struct {
	ChapterUID       uint64         `ebml:"ChapterUID"`
	ChapterTimeStart uint64         `ebml:"ChapterTimeStart"`
	ChapterTimeEnd   uint64         `ebml:"ChapterTimeEnd,omitempty"`
	ChapterDisplay   chapterDisplay `ebml:"ChapterDisplay"`
}

type editionEntry struct {
	EditionUID  uint64        `ebml:"EditionUID"`
	ChapterAtom []chapterAtom `ebml:"ChapterAtom"`
}

// Top-level wrappers: ebml.Marshal writes a struct's fields as elements.
type (
	headerElem   struct{ EBML ebmlHeader }
	liveInfoElem struct{ Info liveInfo }
	fileInfoElem struct{ Info fileInfo }
	tracksElem   struct {
		Tracks struct{ TrackEntry []trackEntry }
	}
	seekHeadElem struct{ SeekHead struct{ Seek []seekEntry } }
	cuesElem     struct{ Cues struct{ CuePoint []cuePoint } }
	chaptersElem struct {
		Chapters struct{ EditionEntry editionEntry }
	}
)

// theHeader is the EBML header both writers start with.
var theHeader = headerElem{ebmlHeader{
	EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
	DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2,
}}

// trackEntries describes tracks, numbered from 1 in order. language is
// written if not empty; frameDur, if positive, is the video DefaultDuration.
func trackEntries(tracks []Track, language string, frameDur time.Duration) tracksElem {
	var te tracksElem
	for i, t := range tracks {
		e := trackEntry{TrackNumber: uint64(i + 1), TrackUID: uint64(i + 1), Language: language, CodecID: t.Codec}
		switch t.Kind {
		case Video:
			e.TrackType = trackTypeVideo
			e.DefaultDuration = uint64(max(0, frameDur))
			e.Video = &videoSettings{PixelWidth: uint64(t.Width), PixelHeight: uint64(t.Height)}
		case Audio:
			e.TrackType = trackTypeAudio
			e.Audio = &audioSettings{SamplingFrequency: float64(t.SampleRate), Channels: uint64(t.Channels), BitDepth: uint64(t.BitDepth)}
		}
		te.Tracks.TrackEntry = append(te.Tracks.TrackEntry, e)
	}
	return te
}

// ebmlWriter writes EBML to w and counts the bytes written.
type ebmlWriter struct {
	w   io.Writer
	pos int64 // bytes written so far
}

func (e *ebmlWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	e.pos += int64(n)
	return n, err
}

// marshal writes the elements of v (a struct of elements) with ebml-go.
func (e *ebmlWriter) marshal(v any) error { return ebml.Marshal(v, e) }

// unknownSize is the 8-byte size of an element whose end is not known yet.
var unknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// appendID appends an element ID (which includes its length marker).
func appendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// idBytes returns an element ID as written, for a SeekHead's SeekID.
func idBytes(id uint32) []byte { return appendID(nil, id) }

// appendUnknownStart appends the header of a master element of unknown size.
func appendUnknownStart(b []byte, id uint32) []byte {
	return append(appendID(b, id), unknownSize...)
}

// appendUintElem appends an unsigned-integer element in as few bytes as hold
// its value. id must be a 1-byte ID.
func appendUintElem(b []byte, id byte, v uint64) []byte {
	b = append(b, id, 0x80|byte(uintLen(v)))
	return appendUint(b, v)
}

// appendSimpleBlock appends the element header and the 4-byte block header
// of a SimpleBlock of n frame bytes on track (1..127). With fixed the size is
// written in 8 bytes (cheap to build), else in as few as hold it.
func appendSimpleBlock(b []byte, track uint64, rel int16, key bool, n int, fixed bool) []byte {
	b = append(b, eidSimpleBlock)
	size := uint64(4 + n)
	if fixed {
		b = appendSize8(b, size)
	} else {
		b = appendVint(b, size)
	}
	b = append(b, 0x80|byte(track)) // track number as a 1-byte vint (tracks 1..127)
	b = append(b, byte(uint16(rel)>>8), byte(uint16(rel)))
	var flags byte
	if key {
		flags |= 0x80
	}
	return append(b, flags)
}

// simpleBlockLen is the length of a SimpleBlock of n frame bytes written
// with the shortest size.
func simpleBlockLen(n int) int64 {
	size := uint64(4 + n)
	return 1 + vintLen(size) + int64(size)
}

// appendSize8 appends an EBML data size in 8 bytes (always valid).
func appendSize8(b []byte, n uint64) []byte {
	return append(b, 0x01, byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// voidElement returns a Void element of exactly n bytes, 2 <= n <= 128.
func voidElement(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = eidVoid, 0x80|byte(n-2)
	return b
}

// vintLen is the length of the shortest EBML size encoding of n.
func vintLen(n uint64) int64 {
	k := int64(1)
	for n >= 1<<(7*k)-1 { // all ones means "unknown"
		k++
	}
	return k
}

// appendVint appends n as the shortest EBML size.
func appendVint(b []byte, n uint64) []byte {
	k := vintLen(n)
	v := n | 1<<(7*k)
	for i := k - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// uintLen is the number of bytes appendUint writes for n.
func uintLen(n uint64) int {
	k := 1
	for k < 8 && n>>(8*k) != 0 {
		k++
	}
	return k
}

// appendUint appends n as an EBML unsigned integer in as few bytes as hold it.
func appendUint(b []byte, n uint64) []byte {
	for i := uintLen(n) - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}
