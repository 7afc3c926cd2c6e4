package mkv_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/internal/demux/demuxtest"
	"attune.dev/attune/mkv"
)

// The fuzz targets feed arbitrary bytes to the streaming readers. They check
// that nothing panics, that memory stays proportional to the input (no
// allocation trusting a size field), that packets come from the input, that
// errors follow the house style, and that skipping by seeking and skipping
// by reading give the same packets.

func TestMatroskaSynthetic(t *testing.T) {
	file := demuxtest.SynthMKV()
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file)
		if !seek {
			r = struct{ io.Reader }{r} // hide Seek: skip by reading
		}
		d, err := mkv.NewReader(r, true)
		if err != nil {
			t.Fatal(err)
		}
		want := []mkv.Track{
			{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 64, Height: 48, FPS: 25},
			{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 1, BitDepth: 16},
		}
		if got := d.Tracks(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("tracks = %+v, want %+v", got, want)
		}
		ps, err := demuxtest.Demux(d)
		if err != io.EOF {
			t.Fatalf("after %d packets: %v", len(ps), err)
		}
		demuxtest.CheckPackets(t, ps, []demuxtest.WantPacket{
			{Kind: mkv.Video, PTS: 0, Size: 6},
			{Kind: mkv.Audio, PTS: 0, Size: 320},
			{Kind: mkv.Video, PTS: 40 * time.Millisecond, Size: 6},
			{Kind: mkv.Audio, PTS: 40 * time.Millisecond, Size: 320},
			{Kind: mkv.Video, PTS: 80 * time.Millisecond, Size: 6},
			{Kind: mkv.Video, PTS: 120 * time.Millisecond, Size: 6},
		})
		v := 0
		for _, p := range ps {
			if p.Kind == mkv.Video {
				if !bytes.Equal(p.Data, demuxtest.FakeJPEG(v)) {
					t.Errorf("frame %d data = % x", v, p.Data)
				}
				v++
			}
		}
	}
}

func TestMatroskaErrors(t *testing.T) {
	cluster := func(body ...[]byte) []byte {
		return append(demuxtest.MKVHead(1e6), demuxtest.El(demuxtest.IDCluster, append([][]byte{demuxtest.ElUint(demuxtest.IDTimecode, 0)}, body...)...)...)
	}
	big := demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x80, demuxtest.FakeJPEG(0)))
	binary.BigEndian.PutUint64(big[1:], 1<<50) // size beyond the cluster
	big[1] = 0x01
	tests := []struct {
		name string
		file []byte
		open bool   // error from NewReader, else from Next
		want string // "" for io.EOF
	}{
		{"laced", cluster(demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x82, demuxtest.FakeJPEG(0)))), false, "read matroska: video block at offset "},
		{"laced audio", cluster(demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(2, 0, 0x86, demuxtest.FakeJPEG(0)))), false, "uses lacing, which is not supported"},
		{"beyond parent", cluster(big), false, "read matroska: element 0xA3 at offset "},
		{"huge frame", append(demuxtest.MKVHead(1e6), demuxtest.ElUnknown(demuxtest.IDCluster, big)...), false, "exceeds the 67108864-byte limit"},
		{"bad id", cluster([]byte{0x00, 0x00, 0x00}), false, "read matroska: invalid element id at offset"},
		{"no ebml", demuxtest.El(demuxtest.IDSegment), true, "read matroska: not a matroska file"},
		{"doctype", demuxtest.El(demuxtest.IDEBML, demuxtest.ElStr(demuxtest.IDDocType, "avi")), true, `EBML document type "avi" is not supported`},
		{"no tracks", append(demuxtest.El(demuxtest.IDEBML), demuxtest.ElUnknown(demuxtest.IDSegment, demuxtest.ElUnknown(demuxtest.IDCluster))...), true, "read matroska: no tracks before the first cluster"},
		{"cut in header", demuxtest.MKVHead(1e6)[:60], true, "read matroska: file ends before its tracks"},
		{"scale 0", append(demuxtest.El(demuxtest.IDEBML), demuxtest.ElUnknown(demuxtest.IDSegment, demuxtest.El(demuxtest.IDInfo, demuxtest.ElUint(demuxtest.IDTimecodeScale, 0)))...), true, "timecode scale 0 is out of range"},
		{"cut in block", cluster(demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x80, demuxtest.FakeJPEG(0))))[:len(cluster())+8], false, ""},
		{"laced foreign track", cluster(demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(3, 0, 0x82, demuxtest.FakeJPEG(0)))), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := mkv.NewReader(bytes.NewReader(tt.file), true)
			if !tt.open && err == nil {
				_, err = demuxtest.Demux(d)
			}
			if tt.want == "" {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				return
			}
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestMatroskaSkipsLargeElements replays a virtual 7 GB file whose bulk is
// a Void and an Attachments element: they must be seeked over, not read.
func TestMatroskaSkipsLargeElements(t *testing.T) {
	const gb = 1 << 30
	voidHdr := append(demuxtest.EbmlID(demuxtest.IDVoid), 0x01, 0, 0, 0x01, 0x00, 0x00, 0x00, 0x00) // 4 GiB
	attHdr := append(demuxtest.EbmlID(demuxtest.IDAttachments), 0x01, 0, 0, 0x00, 0xC0, 0x00, 0x00, 0x00)
	clusters := bytes.Repeat(demuxtest.El(demuxtest.IDCluster, demuxtest.ElUint(demuxtest.IDTimecode, 0), demuxtest.El(demuxtest.IDSimpleBlock, demuxtest.Block(1, 0, 0x80, demuxtest.FakeJPEG(0)))), 3)
	f := &demuxtest.Sparse{Parts: []demuxtest.SparsePart{
		{Data: demuxtest.MKVHead(1e6)},
		{Data: voidHdr}, {Zeros: 4 * gb},
		{Data: clusters[:len(clusters)/3]},
		{Data: attHdr}, {Zeros: 3 * gb},
		{Data: clusters[len(clusters)/3:]},
	}}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	alloc := ms.TotalAlloc
	d, err := mkv.NewReader(f, true)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := demuxtest.Demux(d)
	if err != io.EOF || len(ps) != 3 {
		t.Fatalf("%d packets, err %v; want 3, io.EOF", len(ps), err)
	}
	runtime.ReadMemStats(&ms)
	if n := ms.TotalAlloc - alloc; n > 1<<20 {
		t.Errorf("allocated %d bytes", n)
	}
	if f.BytesRead > 1<<20 {
		t.Errorf("read %d bytes of a %d-byte file", f.BytesRead, f.Size())
	}
}

func FuzzMatroska(f *testing.F) {
	demuxtest.FuzzSeeds(f, "tiny.mkv")
	f.Add(demuxtest.SynthMKV())
	f.Add(demuxtest.SlowMKV())
	f.Add(demuxtest.SynthMKV()[:200])
	f.Fuzz(func(t *testing.T, data []byte) {
		demuxtest.FuzzDemux(t, data, "read matroska: ", func(r io.Reader, withAudio bool) (demuxtest.Demuxer, error) {
			return mkv.NewReader(r, withAudio)
		})
	})
}

// TestSkipVideoData: with SkipVideoData the reader delivers the same
// packets with the video data left in the stream, and DataAt says where it
// is; the audio data is read as before; a stream cut inside a frame ends
// before it.
func TestSkipVideoData(t *testing.T) {
	file := demuxtest.SynthMKV()
	full, err := mkv.NewReader(bytes.NewReader(file), true)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := demuxtest.Demux(full)
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file)
		if !seek {
			r = struct{ io.Reader }{r}
		}
		d, err := mkv.NewReader(r, true)
		if err != nil {
			t.Fatal(err)
		}
		d.SkipVideoData()
		var got []mkv.Packet
		for {
			p, err := d.Next()
			if err != nil {
				break
			}
			if p.Kind == mkv.Video {
				if p.Data != nil {
					t.Fatal("video data read")
				}
				off, size := d.DataAt()
				p.Data = file[off : off+size]
			}
			got = append(got, p)
		}
		if len(got) != len(want) {
			t.Fatalf("seek %v: %d packets, want %d", seek, len(got), len(want))
		}
		for i := range got {
			if got[i].Kind != want[i].Kind || got[i].PTS != want[i].PTS || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Errorf("seek %v: packet %d differs", seek, i)
			}
		}
	}
	// Cut inside the last frame: the frame is not delivered.
	d, _ := mkv.NewReader(bytes.NewReader(file), true)
	d.SkipVideoData()
	var end int64
	for {
		p, err := d.Next()
		if err != nil {
			break
		}
		if p.Kind == mkv.Video {
			off, _ := d.DataAt()
			end = off + 2
		}
	}
	for _, seek := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(file[:end])
		if !seek {
			r = struct{ io.Reader }{r}
		}
		d, _ := mkv.NewReader(r, true)
		d.SkipVideoData()
		n := 0
		for {
			if _, err := d.Next(); err != nil {
				break
			}
			n++
		}
		if n != len(want)-1 {
			t.Errorf("seek %v: cut stream: %d packets, want %d", seek, n, len(want)-1)
		}
	}
}

// TestReuse: a packet's data given back is read into again by a later
// packet that fits, and the packets read are the same as without.
func TestReuse(t *testing.T) {
	file := demuxtest.SynthMKV()
	plain, err := mkv.NewReader(bytes.NewReader(file), true)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := demuxtest.Demux(plain)
	d, err := mkv.NewReader(bytes.NewReader(file), true)
	if err != nil {
		t.Fatal(err)
	}
	reused := 0
	var given []byte
	for i := 0; ; i++ {
		p, err := d.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d packets, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != want[i].Kind || p.PTS != want[i].PTS || !bytes.Equal(p.Data, want[i].Data) {
			t.Errorf("packet %d differs with reuse", i)
		}
		if given != nil && len(p.Data) > 0 && len(p.Data) <= cap(given) && &p.Data[:1][0] == &given[:1][0] {
			reused++
		}
		given = p.Data
		d.Reuse(p.Data)
	}
	if reused == 0 {
		t.Error("no packet was read into a buffer given back")
	}
}
