package v4l2_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"attune.dev/attune/mkv"
	"attune.dev/attune/v4l2"
	"attune.dev/attune/v4l2/v4l2test"
)

// v4l2Open starts a source on cam (on testClock unless opts has a clock)
// and, at the end of the test, closes it and
// checks that the camera was used correctly.
func v4l2Open(t *testing.T, cam *v4l2test.Camera, opts v4l2.Options) *v4l2.Source {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = testClock
	}
	src, err := v4l2.NewSource(cam, opts)
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	s := src
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := cam.Check(); err != nil {
			t.Error(err)
		}
		if c := cam.Calls(); c.Held != 0 || c.Closes != 1 {
			t.Errorf("after Close: %d buffers held, %d closes; want 0 and 1", c.Held, c.Closes)
		}
	})
	return s
}

// testClock is the capture clock of the sources v4l2Open starts.
func testClock() time.Duration { return time.Since(testEpoch) }

var testEpoch = time.Now()

func v4l2Next(t *testing.T, s *v4l2.Source) mkv.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return p
}

// v4l2JPEG encodes a w x h picture: a colour gradient with a frame number
// drawn in as a bright bar, so frames differ.
func v4l2JPEG(t testing.TB, w, h, n int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255}
			if x/8 == n%(w/8) {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// v4l2Segments splits a JPEG header into marker segments up to SOS.
func v4l2Segments(t testing.TB, b []byte) (segs [][]byte, rest []byte) {
	t.Helper()
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			t.Fatalf("no marker at %d", i)
		}
		if b[i+1] == 0xDA {
			return segs, b[i:]
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		segs = append(segs, b[i:i+2+n])
		i += 2 + n
	}
	t.Fatal("no SOS")
	return nil, nil
}

// v4l2StripDHT removes the Huffman tables, as "MJPEG AVI1" cameras do, and
// returns them.
func v4l2StripDHT(t testing.TB, b []byte) (stripped, dht []byte) {
	t.Helper()
	segs, rest := v4l2Segments(t, b)
	out := []byte{0xFF, 0xD8}
	for _, s := range segs {
		if s[1] == 0xC4 {
			dht = append(dht, s...)
			continue
		}
		out = append(out, s...)
	}
	if dht == nil {
		t.Fatal("test JPEG has no DHT")
	}
	return append(out, rest...), dht
}

func TestV4L2NegotiatePreferred(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Formats[v4l2.PixFmtYUYV] = "YUYV 4:2:2"
	cam.Sizes = map[v4l2.PixelFormat][]v4l2.FrameSize{
		v4l2.PixFmtMJPEG: {v4l2test.Discrete(640, 480), v4l2test.Discrete(1920, 1080), v4l2test.Discrete(1280, 720)},
		v4l2.PixFmtYUYV:  {v4l2test.Discrete(640, 480)},
	}
	s := v4l2Open(t, cam, v4l2.Options{})
	want := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 1280, Height: 720, FPS: 30}
	if got := s.Tracks(); len(got) != 1 || got[0] != want {
		t.Errorf("Tracks = %+v, want %+v", got, want)
	}
	c := cam.Calls()
	if c.Format != v4l2.PixFmtMJPEG || c.Width != 1280 || c.Height != 720 || c.FPS != 30 || c.BufferCount != 4 || c.Starts != 1 {
		t.Errorf("calls = %+v", c)
	}
	h := cam.History()
	wantH := []string{"SetImageFormat MJPG 1280x720", "SetFramerate 30", "SetBufferCount 4", "StartStreaming"}
	if !slices.Equal(h, wantH) {
		t.Errorf("history = %q, want %q", h, wantH)
	}
}

func TestV4L2NegotiateRates(t *testing.T) {
	// 1280x720 only at 10 fps: the next preference, 1920x1080@30, wins.
	cam := v4l2test.NewCamera()
	cam.Sizes[v4l2.PixFmtMJPEG] = []v4l2.FrameSize{v4l2test.Discrete(1280, 720), v4l2test.Discrete(1920, 1080)}
	cam.RatesFor = func(f v4l2.PixelFormat, w, h uint32) []v4l2.FrameRate {
		if w == 1280 {
			return []v4l2.FrameRate{v4l2test.FPS(10)}
		}
		return []v4l2.FrameRate{v4l2test.Interval(1001, 30000), v4l2test.FPS(15)}
	}
	s := v4l2Open(t, cam, v4l2.Options{})
	tr := s.Tracks()[0]
	if tr.Width != 1920 || tr.Height != 1080 || tr.FPS < 29.96 || tr.FPS > 29.98 {
		t.Errorf("track = %+v, want 1920x1080@29.97", tr)
	}
}

func TestV4L2NegotiateCustomAndStepwise(t *testing.T) {
	cam := v4l2test.NewCamera()
	delete(cam.Formats, v4l2.PixFmtMJPEG)
	cam.Formats[v4l2.PixFmtJPEG] = "JFIF JPEG"
	cam.Sizes = map[v4l2.PixelFormat][]v4l2.FrameSize{
		v4l2.PixFmtJPEG: {v4l2test.Stepwise(160, 1920, 16, 120, 1080, 8)},
	}
	cam.Rates = []v4l2.FrameRate{v4l2test.IntervalRange(1, 60, 1, 5)} // 5 to 60 fps
	s := v4l2Open(t, cam, v4l2.Options{Prefer: []v4l2.Mode{{Width: 1000, Height: 600, FPS: 24}, {Width: 800, Height: 600, FPS: 24}}})
	// 1000 is not on the 16-pixel grid from 160; 800x600 is.
	want := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 800, Height: 600, FPS: 24}
	if got := s.Tracks()[0]; got != want {
		t.Errorf("track = %+v, want %+v", got, want)
	}
	if c := cam.Calls(); c.Format != v4l2.PixFmtJPEG {
		t.Errorf("format = %v, want JPEG", c.Format)
	}
}

func TestV4L2NegotiateFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []v4l2.FrameSize
		rates []v4l2.FrameRate
		want  mkv.Track
	}{
		{"largest within 1280x720",
			[]v4l2.FrameSize{v4l2test.Discrete(320, 240), v4l2test.Discrete(1024, 576), v4l2test.Discrete(1600, 1200), v4l2test.Discrete(352, 288)},
			[]v4l2.FrameRate{v4l2test.FPS(5), v4l2test.FPS(25), v4l2test.FPS(60)},
			mkv.Track{Width: 1024, Height: 576, FPS: 25}},
		{"all too big: smallest",
			[]v4l2.FrameSize{v4l2test.Discrete(2592, 1944), v4l2test.Discrete(1600, 1200)},
			[]v4l2.FrameRate{v4l2test.FPS(15)},
			mkv.Track{Width: 1600, Height: 1200, FPS: 15}},
		{"stepwise clamped",
			[]v4l2.FrameSize{v4l2test.Stepwise(100, 1000, 100, 100, 500, 100)},
			[]v4l2.FrameRate{v4l2test.IntervalRange(1, 20, 1, 1)},
			mkv.Track{Width: 1000, Height: 500, FPS: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cam := v4l2test.NewCamera()
			cam.Sizes[v4l2.PixFmtMJPEG] = tc.sizes
			cam.Rates = tc.rates
			s := v4l2Open(t, cam, v4l2.Options{})
			tc.want.Kind, tc.want.Codec = mkv.Video, mkv.CodecMJPEG
			if got := s.Tracks()[0]; got != tc.want {
				t.Errorf("track = %+v, want %+v", got, tc.want)
			}
			if c := cam.Calls(); int(c.Width) != tc.want.Width || int(c.Height) != tc.want.Height || float64(c.FPS) != tc.want.FPS {
				t.Errorf("set %dx%d@%g, want %dx%d@%g", c.Width, c.Height, c.FPS, tc.want.Width, tc.want.Height, tc.want.FPS)
			}
		})
	}
}

func TestV4L2NegotiateDriverAdjusts(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Adjust = func(f v4l2.PixelFormat, w, h uint32) (v4l2.PixelFormat, uint32, uint32) {
		return f, 1280, 704
	}
	cam.SetFramerateErr = syscall.ENOTTY
	s := v4l2Open(t, cam, v4l2.Options{})
	if got := s.Tracks()[0]; got.Width != 1280 || got.Height != 704 || got.FPS != 0 {
		t.Errorf("track = %+v, want 1280x704 at unknown rate", got)
	}
	// Frames of another size are delivered but counted.
	cam.Push(v4l2JPEG(t, 64, 48, 0))
	v4l2Next(t, s)
	if st := s.Stats(); st.Mismatch != 1 {
		t.Errorf("stats = %+v, want 1 mismatch", st)
	}
}

func TestV4L2NegotiateErrors(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Formats = map[v4l2.PixelFormat]string{v4l2.PixelFormat('H' | '2'<<8 | '6'<<16 | '4'<<24): "H.264"}
	_, err := v4l2.NewSource(cam, v4l2.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "v4l2: ") || !strings.Contains(err.Error(), "H264 (H.264)") {
		t.Errorf("err = %v, want a v4l2 error listing H264", err)
	}
	if c := cam.Calls(); c.Closes != 1 {
		t.Errorf("device closed %d times after a failed start, want 1", c.Closes)
	}

	cam = v4l2test.NewCamera()
	cam.StartErr = errors.New("failed to map request buffers")
	_, err = v4l2.NewSource(cam, v4l2.Options{})
	if err == nil || !strings.Contains(err.Error(), "v4l2: start streaming: failed to map") {
		t.Errorf("err = %v", err)
	}
	if c := cam.Calls(); c.Closes != 1 {
		t.Errorf("device closed %d times after a failed start, want 1", c.Closes)
	}

	if _, err := v4l2.Open(filepath.Join(t.TempDir(), "video9"), v4l2.Options{}); err == nil || !strings.HasPrefix(err.Error(), "v4l2: open ") {
		t.Errorf("Open of a missing device: %v", err)
	}
}

func TestV4L2FramesCopiedAndReleased(t *testing.T) {
	cam := v4l2test.NewCamera()
	s := v4l2Open(t, cam, v4l2.Options{})
	var want [][]byte
	for i := range 10 {
		want = append(want, v4l2JPEG(t, 64, 48, i))
	}
	// Garbage before and between good frames is skipped and counted.
	cam.Push([]byte{}, []byte{0, 0, 0, 0}, []byte("garbage"))
	cam.Push(want[:5]...)
	cam.Push([]byte{})
	cam.Push(want[5:]...)

	var got []mkv.Packet
	last := time.Duration(-1)
	for range want {
		before := testClock()
		p := v4l2Next(t, s)
		// Read back to back, these untimed frames are stamped when read,
		// each at least 1 ms (the recording's resolution) after the last.
		if p.Kind != mkv.Video || !p.Key || p.PTS < before || p.PTS > testClock()+10*time.Millisecond || p.PTS < last {
			t.Errorf("packet %+v: wrong kind, key or time (Next called at %v)", p.Kind, before)
		}
		last = p.PTS
		got = append(got, p)
	}
	// The camera scribbled over each buffer when it was released; the
	// packets must still hold the frames.
	for i := range want {
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Fatalf("frame %d changed after release (%d bytes, starts % x)", i, len(got[i].Data), got[i].Data[:min(8, len(got[i].Data))])
		}
	}
	c := cam.Calls()
	released := 0
	for _, n := range c.Releases {
		released += n
	}
	if c.Gets != 14 || released != c.Gets || c.Held != 0 {
		t.Errorf("gets %d, releases %d (%v), held %d; want 14 each and none held", c.Gets, released, c.Releases, c.Held)
	}
	// The test frames are smaller than the track says: counted, not dropped.
	// The fake camera gives no capture times by default: stamped when read.
	// Read less than 1 ms apart, some are nudged: how many depends on speed.
	st := s.Stats()
	st.Nudged = 0
	if st != (v4l2.Stats{Frames: 10, Empty: 2, Corrupt: 2, Mismatch: 10, Untimed: 10}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestV4L2Generator(t *testing.T) {
	cam := v4l2test.NewCamera()
	frames := [][]byte{v4l2JPEG(t, 32, 32, 0), v4l2JPEG(t, 32, 32, 1), v4l2JPEG(t, 32, 32, 2)}
	cam.Generate = func(n int) []byte { return frames[n%3] }
	s := v4l2Open(t, cam, v4l2.Options{})
	for i := range 50 {
		if p := v4l2Next(t, s); !bytes.Equal(p.Data, frames[i%3]) {
			t.Fatalf("frame %d differs", i)
		}
	}
	if c := cam.Calls(); c.Gets != 50 || c.Held != 0 {
		t.Errorf("calls = %+v", c)
	}
}

func TestV4L2InsertsHuffmanTables(t *testing.T) {
	orig := v4l2JPEG(t, 96, 64, 3)
	noDHT, dht := v4l2StripDHT(t, orig)
	if _, err := jpeg.Decode(bytes.NewReader(noDHT)); err == nil {
		t.Fatal("image/jpeg decoded a JPEG without Huffman tables: the test proves nothing")
	}

	cam := v4l2test.NewCamera()
	s := v4l2Open(t, cam, v4l2.Options{})
	// Zero padding after EOI, as some drivers leave it, is dropped too.
	cam.Push(noDHT, orig, append(slices.Clone(noDHT), make([]byte, 1000)...))
	fixed := v4l2Next(t, s).Data
	untouched := v4l2Next(t, s).Data
	padded := v4l2Next(t, s).Data

	if !bytes.Equal(untouched, orig) {
		t.Error("a frame with Huffman tables was changed")
	}
	if !bytes.Equal(padded, fixed) {
		t.Error("a padded frame was not trimmed to its EOI")
	}
	// image/jpeg writes the T.81 K.3 tables in one segment, like ours.
	if !bytes.Contains(fixed, dht) {
		t.Error("inserted tables differ from image/jpeg's standard ones")
	}
	segs, _ := v4l2Segments(t, fixed)
	if last := segs[len(segs)-1]; last[1] != 0xC4 {
		t.Errorf("tables not inserted right before SOS (last segment %02X)", last[1])
	}
	a, err := jpeg.Decode(bytes.NewReader(fixed))
	if err != nil {
		t.Fatalf("repaired frame does not decode: %v", err)
	}
	b, _ := jpeg.Decode(bytes.NewReader(orig))
	if !v4l2SameImage(a, b) {
		t.Error("repaired frame decodes to a different picture")
	}
	if st := s.Stats(); st.Repaired != 2 || st.Frames != 3 {
		t.Errorf("stats = %+v", st)
	}

	// ffmpeg, as the reader of recordings, must take it as well.
	if ff, err := exec.LookPath("ffmpeg"); err == nil {
		in := filepath.Join(t.TempDir(), "frame.jpg")
		if err := os.WriteFile(in, fixed, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ff, "-v", "error", "-xerror", "-i", in, "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("ffmpeg on the repaired frame: %v: %s", err, out)
		}
	}
}

func v4l2SameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// v4l2Bars are the colours of the test bars in a YUYV frame.
var v4l2Bars = []color.RGBA{
	{255, 255, 255, 255}, {255, 255, 0, 255}, {0, 255, 255, 255}, {0, 255, 0, 255},
	{255, 0, 255, 255}, {255, 0, 0, 255}, {0, 0, 255, 255}, {0, 0, 0, 255},
}

func TestV4L2YUYVFallback(t *testing.T) {
	const w, h = 320, 240
	cam := v4l2test.NewCamera()
	cam.Formats = map[v4l2.PixelFormat]string{v4l2.PixFmtYUYV: "YUYV 4:2:2"}
	cam.Sizes = map[v4l2.PixelFormat][]v4l2.FrameSize{
		v4l2.PixFmtYUYV: {v4l2test.Discrete(1920, 1080), v4l2test.Discrete(w, h)},
	}
	cam.RatesFor = func(f v4l2.PixelFormat, fw, fh uint32) []v4l2.FrameRate {
		if fw == 1920 {
			return []v4l2.FrameRate{v4l2test.FPS(5)}
		}
		return []v4l2.FrameRate{v4l2test.FPS(30), v4l2test.FPS(15)}
	}
	s := v4l2Open(t, cam, v4l2.Options{})
	want := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: w, Height: h, FPS: 30}
	if got := s.Tracks()[0]; got != want {
		t.Errorf("track = %+v, want %+v", got, want)
	}
	if c := cam.Calls(); c.Format != v4l2.PixFmtYUYV {
		t.Errorf("format = %v, want YUYV", c.Format)
	}

	bars := v4l2test.YUYV(w, h, func(x, y int) (uint8, uint8, uint8) {
		c := v4l2Bars[x*len(v4l2Bars)/w]
		return c.R, c.G, c.B
	})
	// A frame with padded rows (bytesperline 2*w+64) decodes the same.
	padded := make([]byte, 0, (2*w+64)*h)
	for y := range h {
		padded = append(padded, bars[y*2*w:(y+1)*2*w]...)
		padded = append(padded, make([]byte, 64)...)
	}
	cam.Push(bars[:len(bars)/2], bars, padded) // the short one is skipped

	for i := range 2 {
		p := v4l2Next(t, s)
		img, err := jpeg.Decode(bytes.NewReader(p.Data))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if img.Bounds() != image.Rect(0, 0, w, h) {
			t.Fatalf("frame %d is %v", i, img.Bounds())
		}
		for b, c := range v4l2Bars {
			x := (2*b + 1) * w / (2 * len(v4l2Bars))
			r, g, bl, _ := img.At(x, h/2).RGBA()
			got := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}
			if v4l2Dist(got, c) > 12 {
				t.Errorf("frame %d bar %d: got %v, want %v", i, b, got, c)
			}
		}
	}
	if st := s.Stats(); st.Frames != 2 || st.Corrupt != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func v4l2Dist(a, b color.RGBA) int {
	d := 0
	for _, p := range [][2]uint8{{a.R, b.R}, {a.G, b.G}, {a.B, b.B}} {
		d = max(d, max(int(p[0])-int(p[1]), int(p[1])-int(p[0])))
	}
	return d
}

func TestV4L2TimeoutThenRecovery(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Second = time.Millisecond
	s := v4l2Open(t, cam, v4l2.Options{})
	frame := v4l2JPEG(t, 32, 32, 0)
	cam.PushTimeouts(2)
	cam.PushWaitError(syscall.EINTR)
	cam.Push(frame)
	if p := v4l2Next(t, s); !bytes.Equal(p.Data, frame) {
		t.Error("wrong frame")
	}
	if st := s.Stats(); st.Timeouts != 2 || st.Frames != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestV4L2FrameWhileWaiting(t *testing.T) {
	cam := v4l2test.NewCamera()
	s := v4l2Open(t, cam, v4l2.Options{})
	frame := v4l2JPEG(t, 32, 32, 0)
	go func() {
		time.Sleep(20 * time.Millisecond)
		cam.Push(frame)
	}()
	if p := v4l2Next(t, s); !bytes.Equal(p.Data, frame) {
		t.Error("wrong frame")
	}
}

func TestV4L2NoFrames(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Second = time.Millisecond // each 2 s timeout takes 2 ms
	s := v4l2Open(t, cam, v4l2.Options{})
	start := time.Now()
	_, err := s.Next(context.Background())
	if err == nil || err.Error() != "v4l2: no frames for 5s (is the camera unplugged?)" {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	// Only garbage is no better.
	cam.Push([]byte("x"), []byte("y"))
	_, err = s.Next(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no usable frames for 5s (2 skipped") {
		t.Errorf("err = %v", err)
	}
}

func TestV4L2DeviceErrors(t *testing.T) {
	t.Run("dequeue ENODEV", func(t *testing.T) {
		cam := v4l2test.NewCamera()
		s := v4l2Open(t, cam, v4l2.Options{})
		cam.Push(v4l2JPEG(t, 32, 32, 0))
		cam.PushGetError(syscall.ENODEV)
		v4l2Next(t, s)
		_, err := s.Next(context.Background())
		if !errors.Is(err, syscall.ENODEV) || !strings.HasPrefix(err.Error(), "v4l2: dequeue frame: ") {
			t.Errorf("err = %v, want a wrapped ENODEV", err)
		}
	})
	t.Run("unplugged while waiting", func(t *testing.T) {
		cam := v4l2test.NewCamera()
		s := v4l2Open(t, cam, v4l2.Options{})
		go func() {
			time.Sleep(20 * time.Millisecond)
			cam.Unplug()
		}()
		_, err := s.Next(context.Background())
		if !errors.Is(err, syscall.ENODEV) || !strings.Contains(err.Error(), "unplugged") {
			t.Errorf("err = %v, want ENODEV with a hint", err)
		}
	})
	t.Run("wait error", func(t *testing.T) {
		cam := v4l2test.NewCamera()
		s := v4l2Open(t, cam, v4l2.Options{})
		cam.PushWaitError(syscall.EBADF)
		_, err := s.Next(context.Background())
		if !errors.Is(err, syscall.EBADF) || !strings.HasPrefix(err.Error(), "v4l2: wait for frame: ") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestV4L2CloseUnblocksNext(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Second = time.Hour // only Close can end the wait
	src, err := v4l2.NewSource(cam, v4l2.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := src.Next(context.Background())
		errc <- err
	}()
	for cam.Calls().Waits == 0 {
		time.Sleep(time.Millisecond)
	}
	// Close twice, concurrently, while Next waits.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := src.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
	if _, err := src.Next(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if c := cam.Calls(); c.Stops != 1 || c.Closes != 1 {
		t.Errorf("calls = %+v, want one stop and one close", c)
	}
	if err := cam.Check(); err != nil {
		t.Error(err)
	}
}

// TestV4L2CloseWhileStreaming races Close against a reader that takes frames
// as fast as they come (run with -race).
func TestV4L2CloseWhileStreaming(t *testing.T) {
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			cam := v4l2test.NewCamera()
			frame := v4l2JPEG(t, 16, 16, 0)
			cam.Generate = func(int) []byte { return frame }
			src, err := v4l2.NewSource(cam, v4l2.Options{})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := src.Next(context.Background()); err != nil {
						done <- err
						return
					}
				}
			}()
			time.Sleep(time.Duration(i) * 100 * time.Microsecond)
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, os.ErrClosed) {
				t.Errorf("Next: %v", err)
			}
			if err := cam.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestV4L2ContextCancel(t *testing.T) {
	cam := v4l2test.NewCamera()
	cam.Second = 10 * time.Millisecond
	s := v4l2Open(t, cam, v4l2.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	// The source still works afterwards.
	cam.Push(v4l2JPEG(t, 16, 16, 0))
	v4l2Next(t, s)
}

func BenchmarkV4L2YUYV720p(b *testing.B) {
	cam := v4l2test.NewCamera()
	cam.Formats = map[v4l2.PixelFormat]string{v4l2.PixFmtYUYV: "YUYV 4:2:2"}
	cam.Sizes = map[v4l2.PixelFormat][]v4l2.FrameSize{v4l2.PixFmtYUYV: {v4l2test.Discrete(1280, 720)}}
	frame := v4l2test.YUYV(1280, 720, func(x, y int) (uint8, uint8, uint8) { return uint8(x), uint8(y), uint8(x + y) })
	cam.Generate = func(int) []byte { return frame }
	src, err := v4l2.NewSource(cam, v4l2.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := src.Next(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// v4l2WithThumbnail inserts an APP1 (EXIF) segment holding a small JPEG
// right after SOI, as cameras with embedded thumbnails do: an FFD9 that
// does not end the frame.
func v4l2WithThumbnail(t testing.TB, b []byte) []byte {
	t.Helper()
	thumb := v4l2JPEG(t, 16, 16, 1)
	payload := append([]byte("Exif\x00\x00"), thumb...)
	n := len(payload) + 2
	app1 := append([]byte{0xFF, 0xE1, byte(n >> 8), byte(n)}, payload...)
	return slices.Concat(b[:2], app1, b[2:])
}

// v4l2Progressive is a syntactic two-scan JPEG (SOF2, tables between the
// scans, stuffed FF00 and a restart marker in the entropy data): the end
// of the image is the EOI after the last scan.
func v4l2Progressive() []byte {
	seg := func(m byte, body ...byte) []byte {
		n := len(body) + 2
		return append([]byte{0xFF, m, byte(n >> 8), byte(n)}, body...)
	}
	return slices.Concat(
		[]byte{0xFF, 0xD8},
		seg(0xC2, 8, 0, 16, 0, 16, 1, 1, 0x11, 0),
		seg(0xC4, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		seg(0xDA, 1, 1, 0x00, 0, 0, 0),
		[]byte{0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56},
		seg(0xC4, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		seg(0xDA, 1, 1, 0x00, 1, 63, 0),
		[]byte{0x78, 0xFF, 0x00, 0x9A},
		[]byte{0xFF, 0xD9},
	)
}

// A driver that reports its whole buffer as used leaves stale bytes after
// the frame's EOI — padding, or the tail of an earlier frame with its own
// FFD9. Each frame is cut at the EOI that ends its image (not at an FFD9 in
// an EXIF thumbnail, not at the last FFD9 in the buffer); clean frames pass
// byte for byte.
func TestV4L2CutsTrailingBytesAfterEOI(t *testing.T) {
	plain := v4l2JPEG(t, 64, 48, 2)
	thumbed := v4l2WithThumbnail(t, v4l2JPEG(t, 64, 48, 5))
	if _, err := jpeg.Decode(bytes.NewReader(thumbed)); err != nil {
		t.Fatalf("test frame with a thumbnail does not decode: %v", err)
	}
	noDHT, _ := v4l2StripDHT(t, plain)
	prog := v4l2Progressive()
	frames := [][]byte{plain, thumbed, noDHT, prog}
	stale := v4l2JPEG(t, 64, 48, 7)
	junk := [][]byte{
		make([]byte, 700),    // zero padding
		stale[len(stale)/2:], // an earlier frame's tail, ending in FFD9
		slices.Concat(stale[100:300], []byte{0xFF, 0xD9, 0, 0, 0xFF, 0xD9}), // FFD9s and junk
		{0xFF, 0xD9, 0xFF, 0xD8, 0xFF, 0xD9},                                // more markers
	}

	clean := v4l2test.NewCamera()
	s := v4l2Open(t, clean, v4l2.Options{})
	clean.Push(frames...)
	var want [][]byte
	for i, f := range frames {
		p := v4l2Next(t, s)
		if i != 2 && !bytes.Equal(p.Data, f) {
			t.Errorf("clean frame %d changed (%d bytes, want %d)", i, len(p.Data), len(f))
		}
		want = append(want, p.Data) // frame 2 got its Huffman tables
	}

	dirty := v4l2test.NewCamera()
	dirty.Trailer = func(n int) []byte { return junk[n%len(junk)] }
	s = v4l2Open(t, dirty, v4l2.Options{})
	for range 2 {
		dirty.Push(frames...)
	}
	for n := range 2 * len(frames) {
		i := n % len(frames)
		if p := v4l2Next(t, s); !bytes.Equal(p.Data, want[i]) {
			t.Errorf("frame %d with %d trailing bytes: got %d bytes, want %d", i, len(junk[n%len(junk)]), len(p.Data), len(want[i]))
		}
	}
	if st := s.Stats(); st.Frames != 8 || st.Corrupt != 0 || st.Repaired != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// Frames are stamped with when the driver captured them, mapped onto the
// recording's clock, not with when they were read: here every frame is read
// at the same late moment, after a 0.7 s stall in the camera, and the
// stamps still follow the capture times to the microsecond.
func TestV4L2StampsCaptureTime(t *testing.T) {
	const interval = 33333 * time.Microsecond
	var read atomic.Int64 // the recording's clock, as the test sets it
	read.Store(int64(2 * time.Second))
	cam := v4l2test.NewCamera()
	cam.FrameInterval = interval
	cam.Monotonic = func() time.Duration { return 5000 * time.Second } // kernel uptime
	s := v4l2Open(t, cam, v4l2.Options{Clock: func() time.Duration { return time.Duration(read.Load()) }})

	frame := v4l2JPEG(t, 64, 48, 0)
	cam.Push(frame, frame, frame)
	cam.PushGap(700 * time.Millisecond) // the camera stalls
	cam.Push(frame, frame)
	read.Store(int64(10 * time.Second)) // and everything is read late, in a burst

	// Streaming started at 2 s on the recording's clock, 5000 s on the
	// camera's: frame n was captured (n+1) intervals later, plus the stall.
	want := []time.Duration{1, 2, 3, 4, 5}
	for i := range want {
		want[i] = 2*time.Second + want[i]*interval
		if i >= 3 {
			want[i] += 700 * time.Millisecond
		}
	}
	for i, w := range want {
		if p := v4l2Next(t, s); p.PTS != w {
			t.Errorf("frame %d: PTS %v, want its capture time %v (read at %v)", i, p.PTS, w, time.Duration(read.Load()))
		}
	}
	if st := s.Stats(); st.Untimed != 0 || st.Nudged != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// Stamps strictly increase: a capture time equal to or before the previous
// frame's, or a read time equal to it, moves 1 ms (the recording's
// resolution) after it, counted.
func TestV4L2StampsStrictlyIncrease(t *testing.T) {
	frame := v4l2JPEG(t, 64, 48, 0)
	const ms = time.Millisecond
	t.Run("kernel stamps going back", func(t *testing.T) {
		var read atomic.Int64
		read.Store(int64(time.Minute))
		cam := v4l2test.NewCamera()
		cam.FrameInterval = 10 * ms
		cam.Monotonic = func() time.Duration { return time.Hour }
		s := v4l2Open(t, cam, v4l2.Options{Clock: func() time.Duration { return time.Duration(read.Load()) }})
		cam.Push(frame, frame)
		cam.PushGap(-20 * ms) // the third frame stamped before the second
		cam.Push(frame)
		cam.PushGap(-10 * ms) // the fourth stamped like the third
		cam.Push(frame)
		read.Store(int64(2 * time.Minute))
		want := []time.Duration{time.Minute + 10*ms, time.Minute + 20*ms, time.Minute + 21*ms, time.Minute + 22*ms}
		for i, w := range want {
			if p := v4l2Next(t, s); p.PTS != w {
				t.Errorf("frame %d: PTS %v, want %v", i, p.PTS, w)
			}
		}
		if st := s.Stats(); st.Nudged != 2 || st.Untimed != 0 {
			t.Errorf("stats = %+v, want 2 nudged", st)
		}
	})
	t.Run("untimed frames read at once", func(t *testing.T) {
		cam := v4l2test.NewCamera() // no FrameInterval: no capture times
		s := v4l2Open(t, cam, v4l2.Options{Clock: func() time.Duration { return 3 * time.Second }})
		cam.Push(frame, frame, frame)
		for i := range 3 {
			if p, w := v4l2Next(t, s), 3*time.Second+time.Duration(i)*ms; p.PTS != w {
				t.Errorf("frame %d: PTS %v, want %v", i, p.PTS, w)
			}
		}
		if st := s.Stats(); st.Nudged != 2 || st.Untimed != 3 {
			t.Errorf("stats = %+v, want 2 nudged, 3 untimed", st)
		}
	})
}

// Gaps in the driver's frame counter are counted as frames it dropped;
// the frames it delivered are counted as before.
func TestV4L2CountsDriverDrops(t *testing.T) {
	cam := v4l2test.NewCamera()
	s := v4l2Open(t, cam, v4l2.Options{})
	frame := v4l2JPEG(t, 64, 48, 0)
	cam.Push(frame, frame)
	v4l2Next(t, s)
	v4l2Next(t, s)
	cam.DropFrames(3)
	cam.Push(frame, frame)
	v4l2Next(t, s)
	v4l2Next(t, s)
	if st := s.Stats(); st.Frames != 4 || st.DriverDropped != 3 || s.DriverDropped() != 3 {
		t.Errorf("stats = %+v, want 4 frames and 3 dropped by the driver", st)
	}
}
