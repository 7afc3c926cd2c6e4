package mkv

import (
	"attune.dev/attune/internal/demux"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"
	"time"
)

// Matroska is EBML: a tree of elements, each an ID, a size and a body.
//
//   - An ID is a variable-length integer (vint) of 1-4 bytes whose leading
//     zero bits give its length; it keeps its length marker (0x1A45DFA3).
//   - A size is a vint of 1-8 bytes with the marker bit removed. All value
//     bits set means "unknown size": live writers use it for Segment and
//     Cluster, which then end where an element that cannot be their child
//     (another Cluster, Cues, ...) starts, or at the end of the file.
//
// The file is an EBML header, then a Segment holding Info (TimecodeScale),
// Tracks, and Clusters. A Cluster holds a Timecode and SimpleBlocks or
// BlockGroups wrapping a Block. A block body is: track number (a vint like a
// size), a signed 16-bit timecode relative to the cluster's, a flags byte
// (bits 0x06: lacing), and the frame. A block's time is (cluster timecode +
// relative timecode) × TimecodeScale nanoseconds.
//
// The reader streams: it holds the EBML header, Info and Tracks in memory,
// reads one block body at a time, and skips (seeks over) everything else.

// mkvrUnknownSize marks an element whose size field has all value bits set.
const mkvrUnknownSize = -1

// mkvrElem is an element header read from the stream.
type mkvrElem struct {
	id   uint32
	size int64 // unknownSize if unknown
	off  int64 // offset of the ID
	body int64 // offset of the body
}

// end is the offset just past the body, or -1 if the size is unknown.
func (e mkvrElem) end() int64 {
	if e.size < 0 {
		return -1
	}
	return e.body + e.size
}

// mkvReader streams the blocks of a Matroska file's chosen tracks.
type mkvReader struct {
	s         *demux.Stream
	trk       []Track
	videoNum  uint64
	audioNum  uint64 // 0: audio not delivered
	scale     int64  // nanoseconds per timecode tick
	segEnd    int64  // -1: unknown size, ends at EOF
	inCluster bool
	clEnd     int64    // -1: unknown size
	clTime    int64    // cluster timecode, in ticks
	pending   mkvrElem // read but not handled; valid if hasPend
	hasPend   bool
	skipTo    int64    // rest of a BlockGroup to skip before reading on
	noVideo   bool     // video blocks' data is skipped, not read
	dataOff   int64    // where the last packet's data began
	dataSize  int64    // and its size
	spare     [][]byte // packet buffers given back (Reader.Reuse)
	reusing   bool     // Reuse was called
}

// newMatroskaReader reads a Matroska file's headers up to its first Cluster.
// If r is an io.Seeker, skipped elements are seeked over.
func newMatroskaReader(r io.Reader, withAudio bool) (*mkvReader, error) {
	m := &mkvReader{s: demux.NewStream(r), scale: 1000000}
	if err := m.readHead(withAudio); err != nil {
		return nil, demux.HeadError("read matroska", "its tracks", err)
	}
	return m, nil
}

func (m *mkvReader) tracks() []Track { return m.trk }

// readHead reads the EBML header, finds the Segment and reads Info and
// Tracks, stopping at the first Cluster.
func (m *mkvReader) readHead(withAudio bool) error {
	e, err := mkvrReadElem(m.s)
	if err != nil {
		return err
	}
	if e.id != eidEBML {
		return errors.New("not a matroska file: no EBML header")
	}
	body, err := m.readBody(e)
	if err != nil {
		return err
	}
	docType := "matroska" // the EBML default
	if err := mkvrEachChild(body, func(id uint32, b []byte) error {
		if id == eidDocType {
			docType = strings.TrimRight(string(b), "\x00")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("ebml header: %w", err)
	}
	if docType != "matroska" && docType != "webm" {
		return &demux.UnsupportedError{What: fmt.Sprintf("EBML document type %q", docType), Supported: "matroska, webm"}
	}

	// Top level: anything (Void, CRC) until the Segment.
	for {
		e, err = mkvrReadElem(m.s)
		if err != nil {
			return err
		}
		if e.id == eidSegment {
			break
		}
		if err := m.skipElem(e); err != nil {
			return err
		}
	}
	m.segEnd = e.end()

	// Segment level: Info and Tracks, skipping the rest, until a Cluster.
	var entries []mkvrTrack
	haveTracks := false
	step := func() (done bool, err error) {
		if m.segEnd >= 0 && m.s.Pos >= m.segEnd {
			return true, nil
		}
		e, err := mkvrReadElem(m.s)
		if err != nil {
			return false, err
		}
		if err := m.within(e, m.segEnd); err != nil {
			return false, err
		}
		switch {
		case e.id == eidCluster || e.id == eidEBML || e.id == eidSegment:
			m.pending, m.hasPend = e, true
			return true, nil
		case e.id == eidInfo:
			body, err := m.readBody(e)
			if err != nil {
				return false, err
			}
			return false, m.parseInfo(body)
		case e.id == eidTracks && !haveTracks:
			body, err := m.readBody(e)
			if err != nil {
				return false, err
			}
			entries, err = mkvrParseTracks(body)
			haveTracks = err == nil
			return false, err
		}
		return false, m.skipElem(e)
	}
	for {
		done, err := step()
		if demux.IsEOF(err) && haveTracks {
			break // cut before the first cluster: no packets
		}
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	if !haveTracks {
		return errors.New("no tracks before the first cluster")
	}
	return m.chooseTracks(entries, withAudio)
}

func (m *mkvReader) parseInfo(b []byte) error {
	return mkvrEachChild(b, func(id uint32, b []byte) error {
		if id != eidTimecodeScale {
			return nil
		}
		v, err := mkvrUint(b)
		if err != nil {
			return fmt.Errorf("timecode scale: %w", err)
		}
		if v == 0 || v > uint64(time.Hour) {
			return fmt.Errorf("timecode scale %d is out of range", v)
		}
		m.scale = int64(v)
		return nil
	})
}

// mkvrTrack is a TrackEntry, with Matroska's defaults.
type mkvrTrack struct {
	num, typ       uint64
	enabled        bool
	codec          string
	private        []byte
	defaultDur     uint64 // ns per frame
	encoded        bool   // has ContentEncodings (compression, encryption)
	width, height  uint64
	rate           float64
	channels, bits uint64
}

func mkvrParseTracks(b []byte) ([]mkvrTrack, error) {
	var ts []mkvrTrack
	err := mkvrEachChild(b, func(id uint32, b []byte) error {
		if id != eidTrackEntry {
			return nil
		}
		t := mkvrTrack{enabled: true, rate: 8000, channels: 1}
		err := mkvrEachChild(b, func(id uint32, b []byte) error {
			var err error
			switch id {
			case eidTrackNumber:
				t.num, err = mkvrUint(b)
			case eidTrackType:
				t.typ, err = mkvrUint(b)
			case eidFlagEnabled:
				var v uint64
				v, err = mkvrUint(b)
				t.enabled = v != 0
			case eidCodecID:
				t.codec = strings.TrimRight(string(b), "\x00")
			case eidCodecPrivate:
				t.private = b
			case eidDefaultDuration:
				t.defaultDur, err = mkvrUint(b)
			case eidContentEncodings:
				t.encoded = true
			case eidVideo:
				err = mkvrEachChild(b, func(id uint32, b []byte) error {
					var err error
					switch id {
					case eidPixelWidth:
						t.width, err = mkvrUint(b)
					case eidPixelHeight:
						t.height, err = mkvrUint(b)
					}
					return err
				})
			case eidAudio:
				err = mkvrEachChild(b, func(id uint32, b []byte) error {
					var err error
					switch id {
					case eidSamplingFreq:
						t.rate, err = mkvrFloat(b)
					case eidChannels:
						t.channels, err = mkvrUint(b)
					case eidBitDepth:
						t.bits, err = mkvrUint(b)
					}
					return err
				})
			}
			if err != nil {
				return fmt.Errorf("track entry element 0x%X: %w", id, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		ts = append(ts, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracks: %w", err)
	}
	return ts, nil
}

// chooseTracks picks the first video track and, if wanted, the first 16-bit
// PCM audio track.
func (m *mkvReader) chooseTracks(entries []mkvrTrack, withAudio bool) error {
	var video, audio, badAudio *mkvrTrack
	for i := range entries {
		t := &entries[i]
		if !t.enabled {
			continue
		}
		switch t.typ {
		case trackTypeVideo:
			if video == nil {
				video = t
			}
		case trackTypeAudio:
			if audio != nil || !withAudio {
				break
			}
			if t.codec == CodecPCMS16 && t.bits == 16 && !t.encoded {
				audio = t
			} else if badAudio == nil {
				badAudio = t
			}
		}
	}
	if video == nil {
		return errors.New("file has no video track")
	}
	switch {
	case video.codec == CodecMJPEG:
	case video.codec == "V_MS/VFW/FOURCC":
		// CodecPrivate is a BITMAPINFOHEADER; biCompression is at 16.
		if len(video.private) < 20 || !strings.EqualFold(string(video.private[16:20]), "MJPG") {
			fcc := "?"
			if len(video.private) >= 20 {
				fcc = demux.Printable(video.private[16:20])
			}
			return &demux.UnsupportedError{What: fmt.Sprintf("video codec V_MS/VFW/FOURCC (%s)", fcc), Supported: CodecMJPEG}
		}
	default:
		return &demux.UnsupportedError{What: "video codec " + demux.Printable([]byte(video.codec)), Supported: CodecMJPEG}
	}
	if video.encoded {
		return &demux.UnsupportedError{What: "content encoding (header stripping, compression or encryption) on the video track", Supported: "unencoded tracks"}
	}
	if video.num == 0 {
		return errors.New("video track has no track number")
	}
	if video.width == 0 || video.height == 0 || video.width > 1<<16 || video.height > 1<<16 {
		return fmt.Errorf("video track has invalid size %dx%d", video.width, video.height)
	}
	vt := Track{Kind: Video, Codec: CodecMJPEG, Width: int(video.width), Height: int(video.height)}
	if video.defaultDur > 0 {
		// DefaultDuration is whole nanoseconds: 30 fps is 33333333 ns.
		vt.FPS = math.Round(1e12/float64(video.defaultDur)) / 1000
	}
	m.videoNum = video.num
	m.trk = []Track{vt}

	if audio == nil && badAudio != nil {
		what := "audio codec " + demux.Printable([]byte(badAudio.codec))
		if badAudio.codec == CodecPCMS16 {
			if badAudio.encoded {
				what = "content encoding on the audio track"
			} else {
				what = fmt.Sprintf("audio codec %s with %d-bit samples", CodecPCMS16, badAudio.bits)
			}
		}
		return &demux.UnsupportedError{What: what, Supported: CodecPCMS16 + " 16-bit"}
	}
	if audio != nil {
		rate := math.Round(audio.rate)
		if audio.num == 0 || audio.num == video.num {
			return errors.New("audio track has an invalid track number")
		}
		if !(rate >= 1 && rate <= 1e6) || audio.channels < 1 || audio.channels > 64 {
			return fmt.Errorf("audio track has invalid format: %v Hz, %d channels", audio.rate, audio.channels)
		}
		m.audioNum = audio.num
		m.trk = append(m.trk, Track{Kind: Audio, Codec: CodecPCMS16, SampleRate: int(rate), Channels: int(audio.channels), BitDepth: 16})
	}
	return nil
}

// next returns the next block of a chosen track.
func (m *mkvReader) next() (Packet, error) {
	p, err := m.readPacket()
	if err != nil {
		return Packet{}, demux.End("read matroska", err)
	}
	return p, nil
}

func (m *mkvReader) readPacket() (Packet, error) {
	for {
		if m.skipTo > m.s.Pos {
			if err := m.s.Skip(m.skipTo - m.s.Pos); err != nil {
				return Packet{}, err
			}
		}
		if m.inCluster && m.clEnd >= 0 && m.s.Pos >= m.clEnd {
			m.inCluster = false
		}
		if m.segEnd >= 0 && m.s.Pos >= m.segEnd && !m.hasPend {
			return Packet{}, io.EOF
		}
		var e mkvrElem
		if m.hasPend {
			e, m.hasPend = m.pending, false
		} else {
			var err error
			if e, err = mkvrReadElem(m.s); err != nil {
				return Packet{}, err
			}
		}

		if m.inCluster {
			if mkvrEndsCluster(e.id) {
				// Ends a cluster of unknown size.
				m.inCluster = false
				m.pending, m.hasPend = e, true
				continue
			}
			end := m.clEnd
			if end < 0 {
				end = m.segEnd
			}
			if err := m.within(e, end); err != nil {
				return Packet{}, err
			}
			switch e.id {
			case eidTimecode:
				b, err := m.readBody(e)
				if err != nil {
					return Packet{}, err
				}
				v, err := mkvrUint(b)
				if err != nil {
					return Packet{}, fmt.Errorf("cluster timecode at offset %d: %w", e.off, err)
				}
				m.clTime = int64(v)
			case eidSimpleBlock:
				p, ok, err := m.readBlock(e)
				if err != nil || ok {
					return p, err
				}
			case eidBlockGroup:
				p, ok, err := m.readBlockGroup(e)
				if err != nil || ok {
					return p, err
				}
			default:
				if err := m.skipElem(e); err != nil {
					return Packet{}, err
				}
			}
			continue
		}

		if err := m.within(e, m.segEnd); err != nil {
			return Packet{}, err
		}
		switch e.id {
		case eidCluster:
			m.inCluster, m.clEnd, m.clTime = true, e.end(), 0
		case eidEBML, eidSegment:
			return Packet{}, io.EOF // a chained segment: replay only the first
		default:
			if err := m.skipElem(e); err != nil {
				return Packet{}, err
			}
		}
	}
}

// readBlockGroup finds the Block in a BlockGroup; the rest of the group is
// skipped on the next call, so a cut after the Block still delivers it.
func (m *mkvReader) readBlockGroup(g mkvrElem) (Packet, bool, error) {
	if g.size < 0 {
		return Packet{}, false, fmt.Errorf("block group at offset %d has unknown size", g.off)
	}
	for m.s.Pos < g.end() {
		e, err := mkvrReadElem(m.s)
		if err != nil {
			return Packet{}, false, err
		}
		if err := m.within(e, g.end()); err != nil {
			return Packet{}, false, err
		}
		if e.id != eidBlock {
			if err := m.skipElem(e); err != nil {
				return Packet{}, false, err
			}
			continue
		}
		p, ok, err := m.readBlock(e)
		if err != nil {
			return Packet{}, false, err
		}
		if ok {
			m.skipTo = g.end()
			return p, true, nil
		}
	}
	return Packet{}, false, nil
}

// readBlock reads a SimpleBlock or Block body; ok is false if it belongs to a
// track that is not delivered (and was skipped).
func (m *mkvReader) readBlock(e mkvrElem) (p Packet, ok bool, err error) {
	if e.size < 0 {
		return Packet{}, false, fmt.Errorf("block at offset %d has unknown size", e.off)
	}
	var hdr [8]byte
	if e.size < 1 {
		return Packet{}, false, fmt.Errorf("block at offset %d is empty", e.off)
	}
	if err := m.s.ReadSmall(hdr[:1]); err != nil {
		return Packet{}, false, err
	}
	n := bits.LeadingZeros8(hdr[0]) + 1
	if n > 8 || int64(n)+3 > e.size {
		return Packet{}, false, fmt.Errorf("block at offset %d has a malformed header", e.off)
	}
	if err := m.s.ReadSmall(hdr[1:n]); err != nil {
		return Packet{}, false, err
	}
	track, _, _ := mkvrVint(hdr[:n])
	rest := e.size - int64(n)
	var kind Kind
	switch {
	case track == m.videoNum:
		kind = Video
	case track == m.audioNum && m.audioNum != 0:
		kind = Audio
	default:
		return Packet{}, false, m.s.Skip(rest)
	}
	var tf [3]byte
	if err := m.s.ReadSmall(tf[:]); err != nil {
		return Packet{}, false, err
	}
	rest -= 3
	rel := int64(int16(uint16(tf[0])<<8 | uint16(tf[1])))
	if tf[2]&0x06 != 0 {
		return Packet{}, false, fmt.Errorf("%s block at offset %d uses lacing, which is not supported (remux with: ffmpeg -i IN -c copy OUT.mkv)", kind, e.off)
	}
	if rest == 0 {
		return Packet{}, false, nil
	}
	m.dataOff, m.dataSize = m.s.Pos, rest
	pts := time.Duration((m.clTime + rel) * m.scale)
	if kind == Video && m.noVideo {
		if rest > demux.MaxElement {
			return Packet{}, false, fmt.Errorf("element of %d bytes exceeds the %d-byte limit", rest, demux.MaxElement)
		}
		if err := m.s.Discard(rest); err != nil { // read through: a seek would not find the stream cut short
			return Packet{}, false, err
		}
		return Packet{Kind: kind, PTS: pts, Key: true}, true, nil
	}
	data, err := m.readData(rest)
	if err != nil {
		return Packet{}, false, err
	}
	return Packet{Kind: kind, PTS: pts, Data: data, Key: true}, true, nil
}

// readData reads a block's n bytes of data into the smallest buffer given
// back (Reader.Reuse) that holds them, or a fresh one; once buffers are
// being given back, a fresh one has room to spare, for a later packet a
// little larger.
func (m *mkvReader) readData(n int64) ([]byte, error) {
	best := -1
	for i, b := range m.spare {
		if int64(cap(b)) >= n && (best < 0 || cap(b) < cap(m.spare[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := m.spare[best][:n]
		m.spare[best] = m.spare[len(m.spare)-1]
		m.spare = m.spare[:len(m.spare)-1]
		return b, m.s.ReadFull(b)
	}
	if m.reusing && n <= 1<<20 {
		b := make([]byte, n, n+n/4)
		return b, m.s.ReadFull(b)
	}
	return m.s.ReadBlob(n)
}

// within checks that e fits in a parent ending at end (-1: unknown).
func (m *mkvReader) within(e mkvrElem, end int64) error {
	if end >= 0 && (e.size < 0 && e.id != eidCluster || e.end() > end) {
		return fmt.Errorf("element 0x%X at offset %d: size %d exceeds its parent", e.id, e.off, e.size)
	}
	return nil
}

// readBody reads an element's body into memory, up to maxElement bytes.
func (m *mkvReader) readBody(e mkvrElem) ([]byte, error) {
	if e.size < 0 {
		return nil, fmt.Errorf("element 0x%X at offset %d has unknown size", e.id, e.off)
	}
	if e.size > demux.MaxElement {
		return nil, fmt.Errorf("element 0x%X at offset %d: %d bytes exceeds the %d-byte limit", e.id, e.off, e.size, demux.MaxElement)
	}
	return m.s.ReadBlob(e.size)
}

func (m *mkvReader) skipElem(e mkvrElem) error {
	if e.size < 0 {
		return fmt.Errorf("element 0x%X at offset %d has unknown size", e.id, e.off)
	}
	return m.s.Skip(e.size)
}

// mkvrEndsCluster says whether an element ends a Cluster of unknown size.
func mkvrEndsCluster(id uint32) bool {
	switch id {
	case eidCluster, eidCues, eidSeekHead, eidInfo, eidTracks, eidTags, eidChapters, eidAttachments, eidEBML, eidSegment:
		return true
	}
	return false
}

// mkvrReadElem reads an element header from the stream.
func mkvrReadElem(s *demux.Stream) (mkvrElem, error) {
	e := mkvrElem{off: s.Pos}
	var buf [8]byte
	first, err := s.ReadByte()
	if err != nil {
		return e, err
	}
	n := bits.LeadingZeros8(first) + 1
	if n > 4 {
		return e, fmt.Errorf("invalid element id at offset %d", e.off)
	}
	buf[0] = first
	if err := s.ReadSmall(buf[1:n]); err != nil {
		return e, io.ErrUnexpectedEOF
	}
	_, raw, _ := mkvrVint(buf[:n])
	e.id = uint32(raw)

	if buf[0], err = s.ReadByte(); err != nil {
		return e, io.ErrUnexpectedEOF
	}
	n = bits.LeadingZeros8(buf[0]) + 1
	if n > 8 {
		return e, fmt.Errorf("invalid size of element 0x%X at offset %d", e.id, e.off)
	}
	if err := s.ReadSmall(buf[1:n]); err != nil {
		return e, io.ErrUnexpectedEOF
	}
	v, _, unknown := mkvrVint(buf[:n])
	e.size = int64(v)
	if unknown {
		e.size = mkvrUnknownSize
	}
	e.body = s.Pos
	return e, nil
}

// mkvrVint decodes a vint whose length len(b) matches its marker: val
// without the marker, raw with it (as IDs are written), and whether all value
// bits are set (unknown size).
func mkvrVint(b []byte) (val, raw uint64, allOnes bool) {
	n := len(b)
	for _, c := range b {
		raw = raw<<8 | uint64(c)
	}
	val = raw & (1<<(7*uint(n)) - 1)
	return val, raw, val == 1<<(7*uint(n))-1
}

// mkvrEachChild calls fn for each element in b, the body of a master element
// held in memory.
func mkvrEachChild(b []byte, fn func(id uint32, body []byte) error) error {
	off := 0
	for off < len(b) {
		n := bits.LeadingZeros8(b[off]) + 1
		if n > 4 || off+n > len(b) {
			return fmt.Errorf("invalid element id at relative offset %d", off)
		}
		_, id, _ := mkvrVint(b[off : off+n])
		off += n
		if off >= len(b) {
			return fmt.Errorf("element 0x%X is cut off", id)
		}
		k := bits.LeadingZeros8(b[off]) + 1
		if k > 8 || off+k > len(b) {
			return fmt.Errorf("invalid size of element 0x%X", id)
		}
		size, _, unknown := mkvrVint(b[off : off+k])
		off += k
		if unknown || size > uint64(len(b)-off) {
			return fmt.Errorf("element 0x%X: size exceeds its parent", id)
		}
		if err := fn(uint32(id), b[off:off+int(size)]); err != nil {
			return err
		}
		off += int(size)
	}
	return nil
}

// mkvrUint decodes an EBML unsigned integer (0-8 bytes, big-endian).
func mkvrUint(b []byte) (uint64, error) {
	if len(b) > 8 {
		return 0, fmt.Errorf("integer of %d bytes", len(b))
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// mkvrFloat decodes an EBML float (0, 4 or 8 bytes, big-endian IEEE 754).
func mkvrFloat(b []byte) (float64, error) {
	v, err := mkvrUint(b)
	switch {
	case err != nil:
		return 0, err
	case len(b) == 0:
		return 0, nil
	case len(b) == 4:
		return float64(math.Float32frombits(uint32(v))), nil
	case len(b) == 8:
		return math.Float64frombits(v), nil
	}
	return 0, fmt.Errorf("float of %d bytes", len(b))
}
