package mkv_test

import (
	"bytes"
	"testing"
	"time"

	"attune.dev/attune/internal/demux/demuxtest"
	"attune.dev/attune/mkv"
)

// flushSink records the bytes written before each Flush.
type flushSink struct {
	bytes.Buffer
	at []int // Len at each Flush
}

func (s *flushSink) Flush() error { s.at = append(s.at, s.Len()); return nil }

// TestLiveFirstClusterEarly: the first Cluster is cut at the first video
// frame FirstCluster into the stream, so the start of a recording is sealed
// a quarter of a second in, not a whole second; later Clusters last
// ClusterDuration.
func TestLiveFirstClusterEarly(t *testing.T) {
	tracks := []mkv.Track{
		{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 64, Height: 48, FPS: 25},
		{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 8000, Channels: 1, BitDepth: 16},
	}
	for _, tc := range []struct {
		name  string
		opts  mkv.LiveOptions
		flush []time.Duration // PTS of the packet before which each Flush comes
	}{
		{"default", mkv.LiveOptions{ClusterDuration: time.Second},
			[]time.Duration{280 * time.Millisecond, 1280 * time.Millisecond, 2280 * time.Millisecond}},
		{"first 500ms", mkv.LiveOptions{ClusterDuration: time.Second, FirstCluster: 500 * time.Millisecond},
			[]time.Duration{520 * time.Millisecond, 1520 * time.Millisecond, 2520 * time.Millisecond}},
		{"never longer than the cluster", mkv.LiveOptions{ClusterDuration: 200 * time.Millisecond, FirstCluster: time.Second},
			[]time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sink flushSink
			w, err := mkv.NewLiveWriter(&sink, tracks, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// 25 fps video and 40 ms audio chunks, starting 0.
			var flushed []time.Duration
			for i := 0; i < 75; i++ {
				pts := time.Duration(i) * 40 * time.Millisecond
				for _, p := range []mkv.Packet{
					{Kind: mkv.Video, PTS: pts, Key: true, Data: demuxtest.FakeJPEG(i)},
					{Kind: mkv.Audio, PTS: pts, Key: true, Data: make([]byte, 640)},
				} {
					n := len(sink.at)
					if err := w.WritePacket(p); err != nil {
						t.Fatal(err)
					}
					if len(sink.at) > n {
						if p.Kind != mkv.Video {
							t.Errorf("cut before an audio packet at %v", p.PTS)
						}
						flushed = append(flushed, p.PTS)
					}
				}
			}
			for i, want := range tc.flush {
				if i >= len(flushed) || flushed[i] != want {
					t.Fatalf("flushes before packets at %v, want %v first", flushed, tc.flush)
				}
			}
		})
	}
}
