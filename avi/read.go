package avi

import (
	"attune.dev/attune/internal/demux"
	"attune.dev/attune/mkv"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// AVI is RIFF: chunks of a FourCC ID, a 32-bit little-endian size and a body
// padded to an even length. RIFF and LIST chunks start their body with a
// FourCC type and hold further chunks. An AVI file is
//
//	RIFF 'AVI ' {
//	    LIST 'hdrl' { 'avih'  LIST 'strl' { 'strh' 'strf' ... } ... }
//	    JUNK, LIST 'INFO', ...
//	    LIST 'movi' { '00dc' '01wb' ... [LIST 'rec ' { ... }] ['ix00'] }
//	    ['idx1']
//	}
//	[RIFF 'AVIX' { LIST 'movi' { ... } }] ...  (OpenDML, beyond 1 GB)
//
// A movi chunk ID is the stream number in two decimal digits (the order of
// the strl lists) and a type: 'dc' compressed or 'db' uncompressed video,
// 'wb' audio. A video chunk is one frame (an empty one repeats the previous
// frame and only advances the clock: frame n is at (dwStart + n) × dwScale /
// dwRate seconds of its strh). Audio time follows from the samples before a
// chunk. A writer that was cut off leaves 0xFFFFFFFF ("unknown") as the size
// of RIFF and movi, which then extend to the end of the file.

// aviUnknown is the size a cut-off writer leaves on RIFF and LIST movi.
const aviUnknown = 0xFFFFFFFF

// A Reader streams the chunks of an AVI file's chosen streams as packets.
type Reader struct {
	s   *demux.Stream
	trk []mkv.Track

	vid        int    // video stream number
	vidNum     uint64 // a frame lasts vidNum/vidDen seconds
	vidDen     uint64
	vidStart   uint64 // frames before the first chunk
	frame      uint64 // frames read so far, including empty ones
	aud        int    // audio stream number, -1 if not delivered
	audRate    uint64 // samples per second
	audAlign   uint64 // bytes per sample frame
	audStart   time.Duration
	audBytes   uint64 // audio bytes read so far
	aviRIFFEnd int64  // -1: unknown, to the end of the file
	inMovi     bool
	moviEnd    int64 // -1: unknown
	skipTo     int64 // pad byte after a delivered chunk
}

// NewReader reads an AVI file's headers up to its movi list. The file must
// hold an MJPEG video stream; if withAudio, its first audio stream, if it is
// 16-bit PCM, is delivered too. If r is an io.Seeker, skipped chunks are
// seeked over. A codec that cannot be passed on is reported as a
// *demux.UnsupportedError.
func NewReader(r io.Reader, withAudio bool) (*Reader, error) {
	a := &Reader{s: demux.NewStream(r), aud: -1}
	if err := a.readHead(withAudio); err != nil {
		return nil, demux.HeadError("read avi", "its movi list", err)
	}
	return a, nil
}

// Tracks returns the delivered tracks: the video track first, then the
// audio track if there is one.
func (a *Reader) Tracks() []mkv.Track { return a.trk }

// readHead reads RIFF 'AVI ' and LIST 'hdrl', stopping inside LIST 'movi'.
func (a *Reader) readHead(withAudio bool) error {
	var h [12]byte
	if err := a.s.ReadSmall(h[:]); err != nil {
		return err
	}
	if string(h[:4]) != "RIFF" || string(h[8:]) != "AVI " {
		return errors.New("not an AVI file")
	}
	a.aviRIFFEnd = aviRIFFEnd(8, binary.LittleEndian.Uint32(h[4:]))
	haveHeader := false
	for {
		if a.aviRIFFEnd >= 0 && a.s.Pos >= a.aviRIFFEnd {
			return errors.New("no movi list")
		}
		id, size, off, err := a.readChunk(a.aviRIFFEnd)
		if err != nil {
			return err
		}
		if id != "LIST" {
			if err := a.skipChunk(size); err != nil {
				return err
			}
			continue
		}
		if size < 4 {
			return fmt.Errorf("list at offset %d is too short", off)
		}
		var typ [4]byte
		if err := a.s.ReadSmall(typ[:]); err != nil {
			return err
		}
		switch string(typ[:]) {
		case "hdrl":
			if haveHeader {
				return fmt.Errorf("second hdrl list at offset %d", off)
			}
			body, err := a.s.ReadBlob(int64(size) - 4)
			if err != nil {
				return err
			}
			if err := a.parseHeader(body, withAudio); err != nil {
				return err
			}
			haveHeader = true
			if err := a.s.Skip(int64(size & 1)); err != nil {
				return err
			}
		case "movi":
			if !haveHeader {
				return errors.New("movi list comes before the hdrl list")
			}
			a.inMovi, a.moviEnd = true, -1
			if size != aviUnknown {
				a.moviEnd = a.s.Pos - 4 + int64(size)
			}
			return nil
		default:
			if err := a.skipChunk(size - 4); err != nil {
				return err
			}
		}
	}
}

// aviRIFFEnd returns the end offset of a RIFF whose size field (covering the
// form type and body) sits before body offset bodyOff, or -1 if unknown.
func aviRIFFEnd(bodyOff int64, size uint32) int64 {
	if size == aviUnknown || size < 4 {
		return -1
	}
	return bodyOff + int64(size)
}

// aviStreamInfo is one strl list: the strh fields we use and the raw strf.
type aviStreamInfo struct {
	typ, handler       string
	scale, rate, start uint32
	strf               []byte
}

func (a *Reader) parseHeader(b []byte, withAudio bool) error {
	var usPerFrame, width, height uint32
	var streams []aviStreamInfo
	err := aviEachChunk(b, func(id string, b []byte) error {
		switch {
		case id == "avih" && len(b) >= 40:
			usPerFrame = binary.LittleEndian.Uint32(b[0:])
			width = binary.LittleEndian.Uint32(b[32:])
			height = binary.LittleEndian.Uint32(b[36:])
		case id == "LIST" && len(b) >= 4 && string(b[:4]) == "strl":
			var st aviStreamInfo
			err := aviEachChunk(b[4:], func(id string, b []byte) error {
				switch id {
				case "strh":
					if len(b) < 32 {
						return errors.New("stream header is too short")
					}
					st.typ, st.handler = string(b[0:4]), string(b[4:8])
					st.scale = binary.LittleEndian.Uint32(b[20:])
					st.rate = binary.LittleEndian.Uint32(b[24:])
					st.start = binary.LittleEndian.Uint32(b[28:])
				case "strf":
					st.strf = b
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("stream %d: %w", len(streams), err)
			}
			streams = append(streams, st)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hdrl: %w", err)
	}

	a.vid = -1
	for i, st := range streams {
		if st.typ == "vids" {
			a.vid = i
			break
		}
	}
	if a.vid < 0 {
		return errors.New("file has no video stream")
	}
	if a.vid > 99 {
		return fmt.Errorf("video stream number %d is out of range", a.vid)
	}
	vs := streams[a.vid]
	// strf of a video stream is a BITMAPINFOHEADER: biWidth at 4, biHeight
	// at 8 (negative if top-down), biCompression (FourCC) at 16.
	if len(vs.strf) < 20 {
		return errors.New("video stream format is too short")
	}
	if fcc := vs.strf[16:20]; !strings.EqualFold(string(fcc), "MJPG") {
		return &demux.UnsupportedError{What: "video codec " + demux.Printable(fcc), Supported: "MJPG"}
	}
	w := int64(int32(binary.LittleEndian.Uint32(vs.strf[4:])))
	h := int64(int32(binary.LittleEndian.Uint32(vs.strf[8:])))
	if h < 0 {
		h = -h
	}
	if w == 0 || h == 0 {
		w, h = int64(width), int64(height)
	}
	if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 {
		return fmt.Errorf("video stream has invalid size %dx%d", w, h)
	}
	a.vidNum, a.vidDen, a.vidStart = uint64(vs.scale), uint64(vs.rate), uint64(vs.start)
	if a.vidNum == 0 || a.vidDen == 0 {
		a.vidNum, a.vidDen = uint64(usPerFrame), 1e6
	}
	if a.vidNum == 0 {
		return errors.New("video stream has no frame rate")
	}
	a.trk = []mkv.Track{{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: int(w), Height: int(h), FPS: float64(a.vidDen) / float64(a.vidNum)}}

	if !withAudio {
		return nil
	}
	var bad string
	for i, st := range streams {
		if st.typ != "auds" || i > 99 {
			continue
		}
		wf, err := aviParseWaveFormat(st.strf)
		if err != nil {
			return fmt.Errorf("audio stream %d: %w", i, err)
		}
		if wf.tag != aviFormatPCM || wf.bits != 16 {
			if bad == "" {
				bad = wf.String()
			}
			continue
		}
		if wf.channels < 1 || wf.channels > 64 || wf.rate < 1 || wf.rate > 1e6 {
			return fmt.Errorf("audio stream %d has invalid format: %d Hz, %d channels", i, wf.rate, wf.channels)
		}
		a.aud = i
		a.audRate = uint64(wf.rate)
		a.audAlign = 2 * uint64(wf.channels)
		if st.rate != 0 {
			a.audStart = aviScaleDur(uint64(st.start), uint64(st.scale), uint64(st.rate))
		}
		a.trk = append(a.trk, mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: int(wf.rate), Channels: int(wf.channels), BitDepth: 16})
		return nil
	}
	if bad != "" {
		return &demux.UnsupportedError{What: "audio codec " + bad, Supported: "PCM 16-bit"}
	}
	return nil
}

// WAVEFORMATEX format tags.
const (
	aviFormatPCM        = 0x0001
	aviFormatExtensible = 0xFFFE
)

// aviWaveFormat is the part of a WAVEFORMATEX (strf of an audio stream) we use.
type aviWaveFormat struct {
	tag            uint16
	channels, bits uint16
	rate           uint32
}

func (w aviWaveFormat) String() string {
	names := map[uint16]string{
		0x0001: "PCM", 0x0003: "IEEE float", 0x0006: "A-law", 0x0007: "µ-law",
		0x0050: "MPEG audio", 0x0055: "MP3", 0x00FF: "AAC", 0x1610: "AAC",
		0x2000: "AC-3", 0x2001: "DTS", 0x674F: "Vorbis", 0xF1AC: "FLAC",
	}
	s := fmt.Sprintf("format 0x%04X", w.tag)
	if n, ok := names[w.tag]; ok {
		s = fmt.Sprintf("%s (format 0x%04X)", n, w.tag)
	}
	if w.tag == aviFormatPCM || w.tag == 0x0003 {
		s = fmt.Sprintf("%s with %d-bit samples", s, w.bits)
	}
	return s
}

// aviParseWaveFormat reads a WAVEFORMATEX: wFormatTag at 0, nChannels at 2,
// nSamplesPerSec at 4, wBitsPerSample at 14; WAVE_FORMAT_EXTENSIBLE carries
// the real format tag in the first two bytes of its SubFormat GUID at 24.
func aviParseWaveFormat(b []byte) (aviWaveFormat, error) {
	if len(b) < 16 {
		return aviWaveFormat{}, errors.New("wave format is too short")
	}
	w := aviWaveFormat{
		tag:      binary.LittleEndian.Uint16(b[0:]),
		channels: binary.LittleEndian.Uint16(b[2:]),
		rate:     binary.LittleEndian.Uint32(b[4:]),
		bits:     binary.LittleEndian.Uint16(b[14:]),
	}
	if w.tag == aviFormatExtensible && len(b) >= 40 {
		// KSDATAFORMAT_SUBTYPE_xxx: tag-0000-0010-8000-00AA00389B71.
		if string(b[26:40]) == "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71" {
			w.tag = binary.LittleEndian.Uint16(b[24:])
		}
	}
	return w, nil
}

// Next returns the next chunk of a chosen stream, with PTS its time from the
// start of the file's timeline. Data is freshly allocated and belongs to the
// caller. At the end of the file Next returns io.EOF, also when the file is
// cut short mid-chunk.
func (a *Reader) Next() (mkv.Packet, error) {
	p, err := a.readPacket()
	if err != nil {
		return mkv.Packet{}, demux.End("read avi", err)
	}
	return p, nil
}

func (a *Reader) readPacket() (mkv.Packet, error) {
	for {
		if a.skipTo > a.s.Pos {
			if err := a.s.Skip(a.skipTo - a.s.Pos); err != nil {
				return mkv.Packet{}, err
			}
		}
		if a.inMovi && a.moviEnd >= 0 && a.s.Pos >= a.moviEnd {
			a.inMovi = false
		}
		if !a.inMovi {
			if err := a.toMovi(); err != nil {
				return mkv.Packet{}, err
			}
			continue
		}

		end := a.moviEnd
		if end < 0 {
			end = a.aviRIFFEnd
		}
		id, size, off, err := a.readChunk(end)
		if err != nil {
			return mkv.Packet{}, err
		}
		if id == "LIST" {
			if size < 4 {
				return mkv.Packet{}, fmt.Errorf("list at offset %d is too short", off)
			}
			var typ [4]byte
			if err := a.s.ReadSmall(typ[:]); err != nil {
				return mkv.Packet{}, err
			}
			if string(typ[:]) != "rec " {
				if err := a.skipChunk(size - 4); err != nil {
					return mkv.Packet{}, err
				}
			}
			// LIST 'rec ' only groups chunks: read on inside it.
			continue
		}
		num, typ, ok := aviMoviChunk(id)
		var kind mkv.Kind
		switch {
		case ok && num == a.vid && (typ == "dc" || typ == "db"):
			kind = mkv.Video
		case ok && num == a.aud && typ == "wb":
			kind = mkv.Audio
		default:
			if err := a.skipChunk(size); err != nil {
				return mkv.Packet{}, err
			}
			continue
		}
		var pts time.Duration
		if kind == mkv.Video {
			pts = aviScaleDur(a.vidStart+a.frame, a.vidNum, a.vidDen)
			a.frame++
		} else {
			pts = a.audStart + aviScaleDur(a.audBytes/a.audAlign, 1, a.audRate)
			a.audBytes += uint64(size)
		}
		if size == 0 {
			continue // an empty video chunk repeats the last frame
		}
		data, err := a.s.ReadBlob(int64(size))
		if err != nil {
			return mkv.Packet{}, err
		}
		a.skipTo = a.s.Pos + int64(size&1)
		return mkv.Packet{Kind: kind, PTS: pts, Data: data, Key: true}, nil
	}
}

// toMovi finds the next LIST 'movi' at RIFF level, going on into RIFF 'AVIX'
// extensions; it returns io.EOF at the end.
func (a *Reader) toMovi() error {
	if a.aviRIFFEnd >= 0 && a.s.Pos >= a.aviRIFFEnd {
		// After a RIFF: only an OpenDML extension may follow.
		var h [12]byte
		if err := a.s.ReadSmall(h[:]); err != nil {
			return err
		}
		if string(h[:4]) != "RIFF" || string(h[8:]) != "AVIX" {
			return io.EOF
		}
		a.aviRIFFEnd = aviRIFFEnd(a.s.Pos-4, binary.LittleEndian.Uint32(h[4:]))
		return nil
	}
	id, size, off, err := a.readChunk(a.aviRIFFEnd)
	if err != nil {
		return err
	}
	switch id {
	case "RIFF": // in a RIFF of unknown size
		var typ [4]byte
		if err := a.s.ReadSmall(typ[:]); err != nil {
			return err
		}
		if string(typ[:]) != "AVIX" {
			return io.EOF
		}
		a.aviRIFFEnd = aviRIFFEnd(a.s.Pos-4, size)
		return nil
	case "LIST":
		if size < 4 {
			return fmt.Errorf("list at offset %d is too short", off)
		}
		var typ [4]byte
		if err := a.s.ReadSmall(typ[:]); err != nil {
			return err
		}
		if string(typ[:]) == "movi" {
			a.inMovi, a.moviEnd = true, -1
			if size != aviUnknown {
				a.moviEnd = a.s.Pos - 4 + int64(size)
			}
			return nil
		}
		return a.skipChunk(size - 4)
	}
	return a.skipChunk(size)
}

// readChunk reads a chunk header and checks that the chunk fits in a parent
// ending at end (-1: unknown). A size of 0xFFFFFFFF passes for RIFF and LIST
// (a cut-off writer); such a chunk extends to its parent's end.
func (a *Reader) readChunk(end int64) (id string, size uint32, off int64, err error) {
	off = a.s.Pos
	var h [8]byte
	if err := a.s.ReadSmall(h[:]); err != nil {
		return "", 0, off, err
	}
	id, size = string(h[:4]), binary.LittleEndian.Uint32(h[4:])
	unknown := size == aviUnknown && (id == "RIFF" || id == "LIST")
	if end >= 0 && !unknown && a.s.Pos+int64(size) > end {
		return "", 0, off, fmt.Errorf("chunk %s at offset %d: size %d exceeds its parent", demux.Printable(h[:4]), off, size)
	}
	return id, size, off, nil
}

// skipChunk skips a chunk body of size bytes and its pad byte.
func (a *Reader) skipChunk(size uint32) error {
	if size == aviUnknown {
		return io.EOF // a list of unknown size that we do not read: the rest
	}
	return a.s.Skip(int64(size) + int64(size&1))
}

// aviMoviChunk splits a movi chunk ID like "01wb" into stream number and type.
func aviMoviChunk(id string) (num int, typ string, ok bool) {
	if len(id) != 4 || id[0] < '0' || id[0] > '9' || id[1] < '0' || id[1] > '9' {
		return 0, "", false
	}
	return int(id[0]-'0')*10 + int(id[1]-'0'), id[2:], true
}

// aviEachChunk calls fn for each chunk in b, a list body held in memory.
func aviEachChunk(b []byte, fn func(id string, body []byte) error) error {
	off := 0
	for len(b)-off >= 8 {
		id := string(b[off : off+4])
		size := binary.LittleEndian.Uint32(b[off+4:])
		off += 8
		if uint64(size) > uint64(len(b)-off) {
			return fmt.Errorf("chunk %s: size %d exceeds its parent", demux.Printable([]byte(id)), size)
		}
		if err := fn(id, b[off:off+int(size)]); err != nil {
			return err
		}
		off += int(size) + int(size&1)
	}
	return nil
}

// aviScaleDur returns n × num / den seconds, saturating on overflow.
func aviScaleDur(n, num, den uint64) time.Duration {
	if den == 0 {
		return 0
	}
	hi, lo := bits.Mul64(n, num)
	if hi != 0 {
		return math.MaxInt64
	}
	hi, lo = bits.Mul64(lo, uint64(time.Second))
	if hi >= den {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, den)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}
