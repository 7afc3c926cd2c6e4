package mkv_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"attune.dev/attune/mkv"
)

// TestFileWriterCopies: a packet's data may be reused as soon as
// WritePacket returns (WriteSpan gives it back to the reader): scribbling
// over it afterwards leaves the file as written.
func TestFileWriterCopies(t *testing.T) {
	tracks := []mkv.Track{
		{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 64, Height: 48, FPS: 25},
		{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 1, BitDepth: 16},
	}
	path := filepath.Join(t.TempDir(), "out.mkv")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := mkv.NewFileWriter(out, tracks, mkv.FileOptions{ClusterDuration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var want []mkv.Packet
	buf := make([]byte, 400) // one buffer for every packet, as a reader reusing it would
	for i := range 20 {
		pts := time.Duration(i) * 40 * time.Millisecond
		for _, k := range []mkv.Kind{mkv.Video, mkv.Audio} {
			n := 100 + 13*i
			if k == mkv.Audio {
				n = 320
			}
			data := buf[:n]
			for j := range data {
				data[j] = byte(i*7 + j + int(k))
			}
			p := mkv.Packet{Kind: k, PTS: pts, Data: data, Key: true}
			if err := w.WritePacket(p); err != nil {
				t.Fatal(err)
			}
			want = append(want, mkv.Packet{Kind: k, PTS: pts, Data: bytes.Clone(data)})
			for j := range data {
				data[j] = 0xEE
			}
		}
	}
	if err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Stats().Clusters < 3 {
		t.Fatalf("%d clusters: the test should span several", w.Stats().Clusters)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := mkv.NewReader(f, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []mkv.Packet
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if len(got) != len(want) {
		t.Fatalf("%d packets read back, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Kind != want[i].Kind || got[i].PTS != want[i].PTS || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("packet %d: %v at %v, %d bytes; want %v at %v, %d bytes (equal data: %v)", i, got[i].Kind, got[i].PTS, len(got[i].Data),
				want[i].Kind, want[i].PTS, len(want[i].Data), bytes.Equal(got[i].Data, want[i].Data))
		}
	}
}
