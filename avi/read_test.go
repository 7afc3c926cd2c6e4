package avi_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/avi"
	"attune.dev/attune/internal/demux/demuxtest"
	"attune.dev/attune/mkv"
)

func TestAVISynthetic(t *testing.T) {
	movi := demuxtest.List("movi",
		demuxtest.Chunk("01dc", demuxtest.FakeJPEG(0)),
		demuxtest.Chunk("00wb", make([]byte, 401)), // odd: padded; 100.25 samples
		demuxtest.List("rec ", demuxtest.Chunk("01dc"), demuxtest.Chunk("01dc", demuxtest.FakeJPEG(2)), demuxtest.Chunk("00wb", make([]byte, 399))),
		demuxtest.Chunk("02tx", []byte("subtitle")),
		demuxtest.Chunk("ix01", make([]byte, 24)),
		demuxtest.Chunk("01dc", demuxtest.FakeJPEG(3)),
	)
	avix := append(binary.LittleEndian.AppendUint32([]byte("RIFF"), 4+uint32(len(demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(4)))))), "AVIX"...)
	avix = append(avix, demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(4)))...)
	file := append(demuxtest.SynthAVI(0, demuxtest.Chunk("JUNK", make([]byte, 10)), demuxtest.List("INFO", demuxtest.Chunk("ISFT", []byte("x"))), movi, demuxtest.Chunk("idx1", make([]byte, 64))), avix...)
	want := []demuxtest.WantPacket{
		{Kind: mkv.Video, PTS: 80 * time.Millisecond, Size: 6},
		{Kind: mkv.Audio, PTS: 0, Size: 401},
		{Kind: mkv.Video, PTS: 160 * time.Millisecond, Size: 6}, // frame 1 was empty
		{Kind: mkv.Audio, PTS: 12500 * time.Microsecond, Size: 399},
		{Kind: mkv.Video, PTS: 200 * time.Millisecond, Size: 6},
		{Kind: mkv.Video, PTS: 240 * time.Millisecond, Size: 6},
	}
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file)
		if !seek {
			r = struct{ io.Reader }{r}
		}
		d, err := avi.NewReader(r, true)
		if err != nil {
			t.Fatal(err)
		}
		wantTracks := []mkv.Track{
			{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 64, Height: 48, FPS: 25},
			{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 2, BitDepth: 16},
		}
		if got := d.Tracks(); len(got) != 2 || got[0] != wantTracks[0] || got[1] != wantTracks[1] {
			t.Errorf("tracks = %+v, want %+v", got, wantTracks)
		}
		ps, err := demuxtest.Demux(d)
		if err != io.EOF {
			t.Fatalf("after %d packets: %v", len(ps), err)
		}
		demuxtest.CheckPackets(t, ps, want)
	}

	// A writer cut off mid-file leaves unknown sizes on RIFF and movi.
	cut := demuxtest.SynthAVI(0xFFFFFFFF, demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(0)), demuxtest.Chunk("00wb", make([]byte, 400)), demuxtest.Chunk("01dc", demuxtest.FakeJPEG(1))))
	moviAt := bytes.Index(cut, []byte("movi")) - 4
	binary.LittleEndian.PutUint32(cut[moviAt:], 0xFFFFFFFF)
	cut = cut[:len(cut)-3]
	d, err := avi.NewReader(bytes.NewReader(cut), false)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := demuxtest.Demux(d)
	if err != io.EOF {
		t.Fatal(err)
	}
	demuxtest.CheckPackets(t, ps, []demuxtest.WantPacket{{Kind: mkv.Video, PTS: 80 * time.Millisecond, Size: 6}})
}

func TestAVIErrors(t *testing.T) {
	tests := []struct {
		name string
		file []byte
		open bool
		want string
	}{
		{"beyond parent", demuxtest.SynthAVI(0, demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(0))), []byte("01dc\xff\xff\x00\x00")), false, "read avi: chunk 01dc at offset "},
		{"beyond movi", demuxtest.SynthAVI(0, demuxtest.List("movi", []byte("01dc\x10\x00\x00\x00")), make([]byte, 32)), false, "exceeds its parent"},
		{"no movi", demuxtest.SynthAVI(0), true, "read avi: no movi list"},
		{"not avi", []byte("RIFF\x04\x00\x00\x00WAVE"), true, "read avi: not an AVI file"},
		{"cut header", demuxtest.SynthAVI(0)[:40], true, "read avi: file ends before its movi list"},
		{"movi first", append([]byte("RIFF\xff\xff\xff\xffAVI "), demuxtest.List("movi")...), true, "movi list comes before the hdrl list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := avi.NewReader(bytes.NewReader(tt.file), true)
			if !tt.open && err == nil {
				_, err = demuxtest.Demux(d)
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzAVI(f *testing.F) {
	demuxtest.FuzzSeeds(f, "tiny.avi")
	movi := demuxtest.List("movi",
		demuxtest.Chunk("01dc", demuxtest.FakeJPEG(0)),
		demuxtest.Chunk("00wb", make([]byte, 9)),
		demuxtest.List("rec ", demuxtest.Chunk("01dc"), demuxtest.Chunk("01dc", demuxtest.FakeJPEG(2))),
		demuxtest.Chunk("ix01", make([]byte, 8)),
	)
	f.Add(demuxtest.SynthAVI(0, movi, demuxtest.Chunk("idx1", make([]byte, 16))))
	unknown := demuxtest.SynthAVI(0xFFFFFFFF, movi)
	binary.LittleEndian.PutUint32(unknown[bytes.Index(unknown, []byte("movi"))-4:], 0xFFFFFFFF)
	f.Add(unknown)
	avix := demuxtest.List("movi", demuxtest.Chunk("01dc", demuxtest.FakeJPEG(4)))
	avix = append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(4+len(avix))), append([]byte("AVIX"), avix...)...)
	f.Add(append(demuxtest.SynthAVI(0, movi), avix...))
	f.Fuzz(func(t *testing.T, data []byte) {
		demuxtest.FuzzDemux(t, data, "read avi: ", func(r io.Reader, withAudio bool) (demuxtest.Demuxer, error) {
			return avi.NewReader(r, withAudio)
		})
	})
}
