// Package demuxtest holds what the tests of the container readers (mkv,
// avi) and of file replay (capture) share: builders of synthetic Matroska
// and AVI files for what ffmpeg does not write, a sparse multi-gigabyte
// reader, and the fuzz harness every streaming reader must pass.
//
// It is for tests only and never imported by production code.
package demuxtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/demux"
	"attune.dev/attune/mkv"
)

// Matroska element IDs, with their length markers.
const (
	IDAttachments     = 0x1941A469
	IDAudio           = 0xE1
	IDBitDepth        = 0x6264
	IDBlock           = 0xA1
	IDBlockGroup      = 0xA0
	IDChannels        = 0x9F
	IDCluster         = 0x1F43B675
	IDCodecID         = 0x86
	IDCues            = 0x1C53BB6B
	IDDefaultDuration = 0x23E383
	IDDocType         = 0x4282
	IDEBML            = 0x1A45DFA3
	IDInfo            = 0x1549A966
	IDPixelHeight     = 0xBA
	IDPixelWidth      = 0xB0
	IDSamplingFreq    = 0xB5
	IDSeekHead        = 0x114D9B74
	IDSegment         = 0x18538067
	IDSimpleBlock     = 0xA3
	IDTags            = 0x1254C367
	IDTimecode        = 0xE7
	IDTimecodeScale   = 0x2AD7B1
	IDTrackEntry      = 0xAE
	IDTrackNumber     = 0xD7
	IDTrackType       = 0x83
	IDTracks          = 0x1654AE6B
	IDVideo           = 0xE0
	IDVoid            = 0xEC
)

// Matroska track types.
const (
	TrackTypeVideo = 1
	TrackTypeAudio = 2
)

// A Demuxer is a streaming reader under test: mkv.Reader, avi.Reader.
type Demuxer interface {
	Tracks() []mkv.Track
	Next() (mkv.Packet, error)
}

// --- Synthetic Matroska, for what ffmpeg does not write. ---

// EbmlID encodes an element ID (which includes its length marker).
func EbmlID(id uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], id)
	i := 0
	for i < 3 && b[i] == 0 {
		i++
	}
	return b[i:]
}

// El encodes an element with an 8-byte size field.
func El(id uint32, body ...[]byte) []byte {
	data := bytes.Join(body, nil)
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], uint64(len(data)))
	size[0] = 0x01
	return append(append(EbmlID(id), size[:]...), data...)
}

// ElUnknown encodes a master element of unknown size.
func ElUnknown(id uint32, body ...[]byte) []byte {
	return append(append(EbmlID(id), 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), bytes.Join(body, nil)...)
}

func ElUint(id uint32, v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return El(id, b[:])
}

func ElFloat(id uint32, v float64) []byte { return ElUint(id, math.Float64bits(v)) }

func ElStr(id uint32, s string) []byte { return El(id, []byte(s)) }

// Block encodes a SimpleBlock or Block body.
func Block(track byte, rel int16, flags byte, data []byte) []byte {
	return append([]byte{0x80 | track, byte(uint16(rel) >> 8), byte(rel), flags}, data...)
}

// FakeJPEG is enough of a JPEG for the readers, which do not decode.
func FakeJPEG(i int) []byte { return []byte{0xFF, 0xD8, byte(i), byte(i >> 8), 0xFF, 0xD9} }

// MKVHead is an EBML header and the start of an unknown-size Segment with
// Info (TimecodeScale 1 ms) and Tracks: 1 = MJPEG 64x48 at 25 fps, 2 = PCM
// 8 kHz mono.
func MKVHead(scale uint64) []byte {
	return bytes.Join([][]byte{
		El(IDEBML, ElStr(IDDocType, "matroska")),
		ElUnknown(IDSegment),
		El(IDSeekHead, bytes.Repeat([]byte{0}, 20)),
		El(IDVoid, make([]byte, 100)),
		El(IDInfo, ElUint(IDTimecodeScale, scale)),
		El(IDTracks,
			El(IDTrackEntry, ElUint(IDTrackNumber, 1), ElUint(IDTrackType, TrackTypeVideo), ElStr(IDCodecID, mkv.CodecMJPEG),
				ElUint(IDDefaultDuration, 40e6), El(IDVideo, ElUint(IDPixelWidth, 64), ElUint(IDPixelHeight, 48))),
			El(IDTrackEntry, ElUint(IDTrackNumber, 2), ElUint(IDTrackType, TrackTypeAudio), ElStr(IDCodecID, mkv.CodecPCMS16),
				El(IDAudio, ElFloat(IDSamplingFreq, 8000), ElUint(IDChannels, 1), ElUint(IDBitDepth, 16))),
			El(IDTrackEntry, ElUint(IDTrackNumber, 3), ElUint(IDTrackType, 0x11), ElStr(IDCodecID, "S_TEXT/UTF8")),
		),
	}, nil)
}

// SynthMKV has known- and unknown-size clusters, SimpleBlocks, a
// BlockGroup, a subtitle block, Cues in between and a 10 µs timecode scale.
func SynthMKV() []byte {
	return bytes.Join([][]byte{
		MKVHead(10000),
		El(IDCluster, ElUint(IDTimecode, 0),
			El(IDSimpleBlock, Block(1, 0, 0x80, FakeJPEG(0))),
			El(IDSimpleBlock, Block(2, 0, 0x80, make([]byte, 320))),
			El(IDVoid, make([]byte, 7)),
			El(IDSimpleBlock, Block(3, 100, 0x80, []byte("hello"))),
			El(IDBlockGroup, ElUint(0x9B, 4000), El(IDBlock, Block(1, 4000, 0, FakeJPEG(1))), ElUint(0xFB, 0)),
		),
		El(IDCues, make([]byte, 50)),
		ElUnknown(IDCluster, ElUint(IDTimecode, 8000),
			El(IDSimpleBlock, Block(2, -4000, 0x80, make([]byte, 320))),
			El(IDSimpleBlock, Block(1, 0, 0x80, FakeJPEG(2))),
		),
		ElUnknown(IDCluster, ElUint(IDTimecode, 12000),
			El(IDSimpleBlock, Block(1, 0, 0x80, FakeJPEG(3))),
		),
		El(IDTags, make([]byte, 10)),
	}, nil)
}

// Demux reads all packets of d.
func Demux(d Demuxer) ([]mkv.Packet, error) {
	var ps []mkv.Packet
	for {
		p, err := d.Next()
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
}

// WantPacket is an expected packet: its kind, PTS and size.
type WantPacket struct {
	Kind mkv.Kind
	PTS  time.Duration
	Size int
}

func CheckPackets(t *testing.T, ps []mkv.Packet, want []WantPacket) {
	t.Helper()
	if len(ps) != len(want) {
		t.Errorf("%d packets, want %d", len(ps), len(want))
	}
	for i := range min(len(ps), len(want)) {
		p, w := ps[i], want[i]
		if p.Kind != w.Kind || p.PTS != w.PTS || len(p.Data) != w.Size || !p.Key {
			t.Errorf("packet %d = %v at %v, %d bytes, key %v; want %v at %v, %d bytes", i, p.Kind, p.PTS, len(p.Data), p.Key, w.Kind, w.PTS, w.Size)
		}
	}
}

// Sparse is a virtual io.ReadSeeker: real bytes around long runs of zeros.
type Sparse struct {
	Parts     []SparsePart
	off       int64
	BytesRead int64 // bytes handed out by Read
}

// SparsePart is Data, or if Data is nil, Zeros zero bytes.
type SparsePart struct {
	Data  []byte
	Zeros int64 // if Data is nil
}

// Size is the length of the virtual file.
func (s *Sparse) Size() int64 {
	var n int64
	for _, p := range s.Parts {
		n += int64(len(p.Data)) + p.Zeros
	}
	return n
}

func (s *Sparse) Read(b []byte) (int, error) {
	start := int64(0)
	for _, p := range s.Parts {
		l := int64(len(p.Data)) + p.Zeros
		if s.off < start+l {
			rel := s.off - start
			var n int
			if p.Data != nil {
				n = copy(b, p.Data[rel:])
			} else {
				n = int(min(int64(len(b)), l-rel))
				clear(b[:n])
			}
			s.off += int64(n)
			s.BytesRead += int64(n)
			return n, nil
		}
		start += l
	}
	return 0, io.EOF
}

func (s *Sparse) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.off
	case io.SeekEnd:
		off += s.Size()
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	s.off = off
	return off, nil
}

// --- Synthetic AVI. ---

func Chunk(id string, body ...[]byte) []byte {
	data := bytes.Join(body, nil)
	b := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(data)))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func List(typ string, body ...[]byte) []byte {
	return Chunk("LIST", append([][]byte{[]byte(typ)}, body...)...)
}

func Le32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

// SynthAVI is RIFF 'AVI ' (riffSize 0: computed) with an hdrl: stream 0
// is 16-bit PCM at 8 kHz stereo, stream 1 MJPEG 64x48 at 25 fps starting at
// frame 2, followed by the given RIFF-level chunks.
func SynthAVI(riffSize uint32, body ...[]byte) []byte {
	strh := func(typ, handler string, scale, rate, start uint32) []byte {
		b := append([]byte(typ+handler), make([]byte, 12)...)
		return append(append(b, Le32(scale, rate, start)...), make([]byte, 24)...)
	}
	bih := append(Le32(40, 64, uint32(-48&0xFFFFFFFF)), 1, 0, 24, 0)
	bih = append(append(bih, "MJPG"...), make([]byte, 20)...)
	wfx := []byte{1, 0, 2, 0}
	wfx = append(append(wfx, Le32(8000, 32000)...), 4, 0, 16, 0, 0, 0)
	hdrl := List("hdrl",
		Chunk("avih", make([]byte, 56)),
		List("strl", Chunk("strh", strh("auds", "\x00\x00\x00\x00", 4, 32000, 0)), Chunk("strf", wfx)),
		List("strl", Chunk("strh", strh("vids", "MJPG", 1, 25, 2)), Chunk("strf", bih), Chunk("JUNK", make([]byte, 33))),
	)
	b := append([]byte("AVI "), hdrl...)
	b = append(b, bytes.Join(body, nil)...)
	if riffSize == 0 {
		riffSize = uint32(len(b))
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), riffSize), b...)
}

// SlowMKV has a frame at 0 and one at 10 s.
func SlowMKV() []byte {
	return bytes.Join([][]byte{
		MKVHead(1e6),
		El(IDCluster, ElUint(IDTimecode, 0), El(IDSimpleBlock, Block(1, 0, 0x80, FakeJPEG(0)))),
		El(IDCluster, ElUint(IDTimecode, 10000), El(IDSimpleBlock, Block(1, 0, 0x80, FakeJPEG(1)))),
	}, nil)
}

// FuzzSeeds adds a committed sample file and a few cuts of it. The samples
// (2 frames of 16x16 MJPEG, 67 ms of 1 kHz mono PCM) were written with
//
//	ffmpeg -f lavfi -i testsrc2=size=16x16:rate=30 -f lavfi -i sine=frequency=100:sample_rate=1000 \
//	  -frames:v 2 -t 0.067 -c:v mjpeg -q:v 31 -c:a pcm_s16le -ac 1 \
//	  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact [-reserve_index_space 1] tiny.{mkv,avi}
//
// Keep seeds small: the fuzzer's minimiser is quadratic in input size.
func FuzzSeeds(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:len(b)-1])
}

// fuzzResult is what a reader made of an input.
type fuzzResult struct {
	tracks  []mkv.Track
	packets []mkv.Packet
	err     error
}

func FuzzDemux(t *testing.T, data []byte, prefix string, open func(io.Reader, bool) (Demuxer, error)) {
	run := func(r io.Reader, withAudio bool) fuzzResult {
		d, err := open(r, withAudio)
		if err != nil {
			var ue *demux.UnsupportedError
			if !errors.As(err, &ue) && !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("open error without prefix %q: %v", prefix, err)
			}
			return fuzzResult{err: err}
		}
		res := fuzzResult{tracks: d.Tracks()}
		if len(res.tracks) == 0 || res.tracks[0].Kind != mkv.Video || res.tracks[0].Width <= 0 || res.tracks[0].Height <= 0 {
			t.Fatalf("tracks = %+v", res.tracks)
		}
		if len(res.tracks) > 1 && (!withAudio || res.tracks[1].Kind != mkv.Audio || res.tracks[1].SampleRate <= 0 || res.tracks[1].Channels <= 0) {
			t.Fatalf("tracks = %+v with audio %v", res.tracks, withAudio)
		}
		for {
			p, err := d.Next()
			if err != nil {
				if err != io.EOF && !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("next error without prefix %q: %v", prefix, err)
				}
				res.err = err
				return res
			}
			if p.Kind == mkv.Audio && len(res.tracks) < 2 || p.Kind != mkv.Video && p.Kind != mkv.Audio {
				t.Fatalf("%v packet from tracks %+v", p.Kind, res.tracks)
			}
			if len(p.Data) == 0 || len(p.Data) > len(data) || !bytes.Contains(data, p.Data) {
				t.Fatalf("packet of %d bytes is not from the %d-byte input", len(p.Data), len(data))
			}
			res.packets = append(res.packets, p)
			if len(res.packets) > len(data) {
				t.Fatalf("%d packets from %d bytes", len(res.packets), len(data))
			}
		}
	}

	before := heapAllocs()

	seek := run(bytes.NewReader(data), true)
	read := run(struct{ io.Reader }{bytes.NewReader(data)}, true)
	noAudio := run(bytes.NewReader(data), false)

	// Three runs, each: a read buffer, at most one partial 1 MiB read of a
	// corrupt element, and copies of the input.
	if n, limit := heapAllocs()-before, uint64(3*(2<<20)+64*len(data)); n > limit {
		t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", n, len(data), limit)
	}

	if !fuzzSame(seek, read) {
		t.Fatalf("seeking and reading differ:\n%s\n%s", fuzzSummary(seek), fuzzSummary(read))
	}
	for _, p := range noAudio.packets {
		if p.Kind != mkv.Video {
			t.Fatalf("audio packet with audio off")
		}
	}
}

// heapAllocs returns the bytes allocated so far. Unlike ReadMemStats it
// does not stop the world, which would slow fuzzing down tenfold.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// fuzzSame compares results. Error texts may differ: a reader that seeks
// past the end of a cut file finds out later than one that reads.
func fuzzSame(a, b fuzzResult) bool {
	if (a.err == io.EOF) != (b.err == io.EOF) || !slices.Equal(a.tracks, b.tracks) {
		return false
	}
	return slices.EqualFunc(a.packets, b.packets, func(p, q mkv.Packet) bool {
		return p.Kind == q.Kind && p.PTS == q.PTS && p.Key == q.Key && bytes.Equal(p.Data, q.Data)
	})
}

func fuzzSummary(r fuzzResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tracks %+v, err %v, packets:", r.tracks, r.err)
	for _, p := range r.packets {
		fmt.Fprintf(&b, " %v@%v/%d/%x", p.Kind, p.PTS, len(p.Data), p.Data[:min(8, len(p.Data))])
	}
	return b.String()
}
