package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets feed arbitrary bytes to the streaming readers. They check
// that nothing panics, that memory stays proportional to the input (no
// allocation trusting a size field), that packets come from the input, that
// errors follow the house style, and that skipping by seeking and skipping
// by reading give the same packets.

func FuzzMatroska(f *testing.F) {
	ftFuzzSeeds(f, "tiny.mkv")
	f.Add(ftSynthMKV())
	f.Add(ftSlowMKV())
	f.Add(ftSynthMKV()[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		ftFuzzDemux(t, data, "read matroska: ", func(r io.Reader, withAudio bool) (replayDemuxer, error) {
			return newMatroskaReader(r, withAudio)
		})
	})
}

func FuzzAVI(f *testing.F) {
	ftFuzzSeeds(f, "tiny.avi")
	movi := ftList("movi",
		ftChunk("01dc", ftFakeJPEG(0)),
		ftChunk("00wb", make([]byte, 9)),
		ftList("rec ", ftChunk("01dc"), ftChunk("01dc", ftFakeJPEG(2))),
		ftChunk("ix01", make([]byte, 8)),
	)
	f.Add(ftSynthAVI(0, movi, ftChunk("idx1", make([]byte, 16))))
	unknown := ftSynthAVI(0xFFFFFFFF, movi)
	binary.LittleEndian.PutUint32(unknown[bytes.Index(unknown, []byte("movi"))-4:], 0xFFFFFFFF)
	f.Add(unknown)
	avix := ftList("movi", ftChunk("01dc", ftFakeJPEG(4)))
	avix = append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+len(avix))), append([]byte("AVIX"), avix...)...)
	f.Add(append(ftSynthAVI(0, movi), avix...))
	f.Fuzz(func(t *testing.T, data []byte) {
		ftFuzzDemux(t, data, "read avi: ", func(r io.Reader, withAudio bool) (replayDemuxer, error) {
			return newAVIReader(r, withAudio)
		})
	})
}

// ftFuzzSeeds adds a committed sample file and a few cuts of it. The samples
// (2 frames of 16x16 MJPEG, 67 ms of 1 kHz mono PCM) were written with
//
//	ffmpeg -f lavfi -i testsrc2=size=16x16:rate=30 -f lavfi -i sine=frequency=100:sample_rate=1000 \
//	  -frames:v 2 -t 0.067 -c:v mjpeg -q:v 31 -c:a pcm_s16le -ac 1 \
//	  -fflags +bitexact -flags:v +bitexact -flags:a +bitexact [-reserve_index_space 1] tiny.{mkv,avi}
//
// Keep seeds small: the fuzzer's minimiser is quadratic in input size.
func ftFuzzSeeds(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:len(b)-1])
}

// ftFuzzResult is what a reader made of an input.
type ftFuzzResult struct {
	tracks  []Track
	packets []Packet
	err     error
}

func ftFuzzDemux(t *testing.T, data []byte, prefix string, open func(io.Reader, bool) (replayDemuxer, error)) {
	run := func(r io.Reader, withAudio bool) ftFuzzResult {
		d, err := open(r, withAudio)
		if err != nil {
			var ue *replayUnsupportedError
			if !errors.As(err, &ue) && !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("open error without prefix %q: %v", prefix, err)
			}
			return ftFuzzResult{err: err}
		}
		res := ftFuzzResult{tracks: d.tracks()}
		if len(res.tracks) == 0 || res.tracks[0].Kind != Video || res.tracks[0].Width <= 0 || res.tracks[0].Height <= 0 {
			t.Fatalf("tracks = %+v", res.tracks)
		}
		if len(res.tracks) > 1 && (!withAudio || res.tracks[1].Kind != Audio || res.tracks[1].SampleRate <= 0 || res.tracks[1].Channels <= 0) {
			t.Fatalf("tracks = %+v with audio %v", res.tracks, withAudio)
		}
		for {
			p, err := d.next()
			if err != nil {
				if err != io.EOF && !strings.HasPrefix(err.Error(), prefix) {
					t.Fatalf("next error without prefix %q: %v", prefix, err)
				}
				res.err = err
				return res
			}
			if p.Kind == Audio && len(res.tracks) < 2 || p.Kind != Video && p.Kind != Audio {
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

	before := ftHeapAllocs()

	seek := run(bytes.NewReader(data), true)
	read := run(struct{ io.Reader }{bytes.NewReader(data)}, true)
	noAudio := run(bytes.NewReader(data), false)

	// Three runs, each: a read buffer, at most one partial 1 MiB read of a
	// corrupt element, and copies of the input.
	if n, limit := ftHeapAllocs()-before, uint64(3*(2<<20)+64*len(data)); n > limit {
		t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", n, len(data), limit)
	}

	if !ftFuzzSame(seek, read) {
		t.Fatalf("seeking and reading differ:\n%s\n%s", ftFuzzSummary(seek), ftFuzzSummary(read))
	}
	for _, p := range noAudio.packets {
		if p.Kind != Video {
			t.Fatalf("audio packet with audio off")
		}
	}
}

// ftHeapAllocs returns the bytes allocated so far. Unlike ReadMemStats it
// does not stop the world, which would slow fuzzing down tenfold.
func ftHeapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// ftFuzzSame compares results. Error texts may differ: a reader that seeks
// past the end of a cut file finds out later than one that reads.
func ftFuzzSame(a, b ftFuzzResult) bool {
	if (a.err == io.EOF) != (b.err == io.EOF) || !slices.Equal(a.tracks, b.tracks) {
		return false
	}
	return slices.EqualFunc(a.packets, b.packets, func(p, q Packet) bool {
		return p.Kind == q.Kind && p.PTS == q.PTS && p.Key == q.Key && bytes.Equal(p.Data, q.Data)
	})
}

func ftFuzzSummary(r ftFuzzResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tracks %+v, err %v, packets:", r.tracks, r.err)
	for _, p := range r.packets {
		fmt.Fprintf(&b, " %v@%v/%d/%x", p.Kind, p.PTS, len(p.Data), p.Data[:min(8, len(p.Data))])
	}
	return b.String()
}
