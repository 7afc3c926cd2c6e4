package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"

	"attune.dev/attune/mkv"
)

// testsrcFrames takes n frames from a Fast pattern source, starting at frame
// first.
func testsrcFrames(t testing.TB, first int64, n int) []mkv.Packet {
	t.Helper()
	src := NewPatternSource(Fast)
	defer src.Close()
	src.(*patternSource).n = first
	var pkts []mkv.Packet
	for range n {
		p, err := src.Next(context.Background())
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		pkts = append(pkts, p)
	}
	return pkts
}

func testsrcDecode(t testing.TB, data []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode frame: %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, patternW, patternH) {
		t.Fatalf("decoded bounds %v, want 1280x720", got)
	}
	return img
}

// testsrcDiff is the mean absolute difference of the luma-ish (R+G+B)/3 of a
// and b over r.
func testsrcDiff(a, b image.Image, r, rb image.Rectangle) float64 {
	var sum float64
	for y := range r.Dy() {
		for x := range r.Dx() {
			sum += math.Abs(testsrcGrey(a, r.Min.X+x, r.Min.Y+y) - testsrcGrey(b, rb.Min.X+x, rb.Min.Y+y))
		}
	}
	return sum / float64(r.Dx()*r.Dy())
}

func testsrcGrey(img image.Image, x, y int) float64 {
	r, g, b, _ := img.At(x, y).RGBA()
	return float64(r+g+b) / 3 / 257
}

func tileRect(col, row, cols, rows int) image.Rectangle {
	return image.Rect(col*jpegTile, row*jpegTile, (col+cols)*jpegTile, (row+rows)*jpegTile)
}

func TestPatternSourceTracks(t *testing.T) {
	src := NewPatternSource(Fast)
	defer src.Close()
	want := mkv.Track{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: 1280, Height: 720, FPS: 30}
	if got := src.Tracks(); len(got) != 1 || got[0] != want {
		t.Fatalf("tracks = %+v, want [%+v]", got, want)
	}
}

// TestPatternFrameStructure checks the tiled JPEG layout: header with DRI=1
// and the full frame size, 3599 restart markers in sequence, EOI.
func TestPatternFrameStructure(t *testing.T) {
	data := testsrcFrames(t, 0, 1)[0].Data
	head, sos, scan, err := splitJPEG(data)
	if err != nil {
		t.Fatal(err)
	}
	var sawDRI, sawSOF bool
	for _, seg := range head {
		switch seg[1] {
		case 0xDD:
			sawDRI = bytes.Equal(seg, []byte{0xFF, 0xDD, 0, 4, 0, 1})
		case 0xC0:
			h, w := binary.BigEndian.Uint16(seg[5:]), binary.BigEndian.Uint16(seg[7:])
			sawSOF = w == patternW && h == patternH
		}
	}
	if !sawDRI || !sawSOF || len(sos) == 0 {
		t.Fatalf("header lacks DRI=1 or SOF0 1280x720: % x", data[:64])
	}
	var rst int
	for i := 0; i+1 < len(scan); i++ {
		if scan[i] != 0xFF || scan[i+1] == 0 {
			continue
		}
		if want := byte(0xD0 + rst%8); scan[i+1] != want {
			t.Fatalf("marker %d is FF%02X, want FF%02X", rst, scan[i+1], want)
		}
		rst++
	}
	if want := patternCols*patternRows - 1; rst != want {
		t.Fatalf("%d restart markers, want %d", rst, want)
	}
	if n := len(loadPatternArt().enc.tiles); n > 300 {
		t.Errorf("%d distinct tiles: the picture is too busy to precode", n)
	} else {
		t.Logf("%d distinct tiles, frame %d bytes", n, len(data))
	}
}

func TestPatternSourceFrames(t *testing.T) {
	pkts := testsrcFrames(t, 0, 3)
	base := pkts[0].PTS
	var imgs []image.Image
	for i, p := range pkts {
		if p.Kind != mkv.Video || !p.Key {
			t.Fatalf("frame %d: kind %v key %v", i, p.Kind, p.Key)
		}
		if want := base + time.Duration(i)*time.Second/30; p.PTS != want {
			t.Fatalf("frame %d: pts %v, want %v", i, p.PTS, want)
		}
		imgs = append(imgs, testsrcDecode(t, p.Data))
	}
	full := image.Rect(0, 0, patternW, patternH)
	if d := testsrcDiff(imgs[0], imgs[1], full, full); d < 1 {
		t.Errorf("frames 0 and 1 barely differ (mean diff %.2f): pattern does not move", d)
	}
	counter := tileRect(valueCol, counterRow, counterLen*largeCell.cols, largeCell.rows)
	if d := testsrcDiff(imgs[1], imgs[2], counter, counter); d < 1 {
		t.Errorf("counter of frames 1 and 2 barely differs (mean diff %.2f)", d)
	}

	// The bars move patternStep pixels right per frame: frame 1 shifted left
	// by that much matches frame 0 (outside the wrap-around column).
	top := image.Rect(0, 0, patternW-patternStep, panelRow*jpegTile)
	if d := testsrcDiff(imgs[0], imgs[1], top, top.Add(image.Pt(patternStep, 0))); d > 2 {
		t.Errorf("frame 1 is not frame 0 scrolled right by %d px (mean diff %.2f)", patternStep, d)
	}
	// And the bars have their colours: sample the middle of each bar.
	for i, c := range patternBars {
		x, y := i*patternBarW+patternBarW/2, 100
		r, g, b, _ := imgs[0].At(x, y).RGBA()
		if math.Abs(float64(r>>8)-float64(c.R)) > 8 || math.Abs(float64(g>>8)-float64(c.G)) > 8 || math.Abs(float64(b>>8)-float64(c.B)) > 8 {
			t.Errorf("bar %d at (%d,%d) is %d,%d,%d, want %v", i, x, y, r>>8, g>>8, b>>8, c)
		}
	}

	// Data belongs to the receiver: clobbering one frame leaves the next intact.
	clear(pkts[0].Data)
	testsrcDecode(t, testsrcFrames(t, 0, 1)[0].Data)
}

// TestPatternText reads the counter and the clock back from a decoded frame
// by matching each character cell against every glyph.
func TestPatternText(t *testing.T) {
	for _, tc := range []struct {
		frame          int64
		counter, clock string
	}{
		{0, "000000", "00:00.000"},
		{1, "000001", "00:00.033"},
		{123456, "123456", "68:35.200"}, // 4115.2 s
	} {
		img := testsrcDecode(t, testsrcFrames(t, tc.frame, 1)[0].Data)
		got := testsrcRead(t, img, counterRow, counterLen) + " " + testsrcRead(t, img, clockRow, clockLen)
		if want := tc.counter + " " + tc.clock; got != want {
			t.Errorf("frame %d reads %q, want %q", tc.frame, got, want)
		}
	}
}

func testsrcRead(t *testing.T, img image.Image, row, n int) string {
	t.Helper()
	var s []byte
	for i := range n {
		cell := tileRect(valueCol+i*largeCell.cols, row, largeCell.cols, largeCell.rows)
		best, bestD := byte('?'), math.Inf(1)
		for _, ch := range []byte("0123456789:.") {
			ref, err := drawGlyph(largeCell, ch)
			if err != nil {
				t.Fatal(err)
			}
			if d := testsrcDiff(img, ref, cell, ref.Rect); d < bestD {
				best, bestD = ch, d
			}
		}
		if bestD > 8 {
			best = '?' // nothing matches well: illegible
		}
		s = append(s, best)
	}
	return string(s)
}

// TestPatternFFmpeg has ffmpeg's MJPEG decoder check the frames. It reports
// an MCU whose data does not line up with the restart structure, so a frame
// with one restart marker dropped must fail: the check has teeth.
func TestPatternFFmpeg(t *testing.T) {
	if testing.Short() {
		t.Skip("short: skipping ffmpeg")
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is required for this test (or use -short): %v", err)
	}
	run := func(frames [][]byte) (string, error) {
		cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-err_detect", "explode", "-f", "mjpeg", "-i", "-", "-f", "null", "-")
		cmd.Stdin = bytes.NewReader(bytes.Join(frames, nil))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	var frames [][]byte
	for _, p := range testsrcFrames(t, 0, 10) {
		frames = append(frames, p.Data)
	}
	if out, err := run(frames); err != nil || out != "" {
		t.Fatalf("ffmpeg rejects the frames: %v\n%s", err, out)
	}

	f := frames[0]
	k := len(f) / 2
	k += bytes.Index(f[k:], []byte{0xFF, 0xD5})
	bad := append(bytes.Clone(f[:k]), f[k+2:]...)
	if out, err := run([][]byte{bad}); err == nil && out == "" {
		t.Fatal("ffmpeg accepts a frame with a restart marker missing: the check is toothless")
	}
}

// TestPatternPNG writes a decoded frame for a human to look at when
// ATTUNE_TESTSRC_PNG names the file.
func TestPatternPNG(t *testing.T) {
	path := os.Getenv("ATTUNE_TESTSRC_PNG")
	if path == "" {
		t.Skip("set ATTUNE_TESTSRC_PNG=/tmp/testsrc-frame.png to write a frame")
	}
	img := testsrcDecode(t, testsrcFrames(t, 1234, 1)[0].Data)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestToneSource(t *testing.T) {
	src := NewToneSource(Fast)
	defer src.Close()
	want := mkv.Track{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: 48000, Channels: 1, BitDepth: 16}
	if got := src.Tracks(); len(got) != 1 || got[0] != want {
		t.Fatalf("tracks = %+v, want [%+v]", got, want)
	}

	// Fast pace: 100 packets (2 s of audio) come at once.
	start := time.Now()
	var pkts []mkv.Packet
	for range 100 {
		p, err := src.Next(context.Background())
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		pkts = append(pkts, p)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("fast pace: 2 s of audio took %v", d)
	}

	var samples []int16
	for i, p := range pkts {
		if p.Kind != mkv.Audio || !p.Key || len(p.Data) != 1920 {
			t.Fatalf("packet %d: kind %v key %v len %d", i, p.Kind, p.Key, len(p.Data))
		}
		if want := pkts[0].PTS + time.Duration(i)*20*time.Millisecond; p.PTS != want {
			t.Fatalf("packet %d: pts %v, want %v", i, p.PTS, want)
		}
		for k := 0; k < len(p.Data); k += 2 {
			samples = append(samples, int16(binary.LittleEndian.Uint16(p.Data[k:])))
		}
	}
	clear(pkts[0].Data) // the receiver owns Data
	if p, _ := src.Next(context.Background()); int16(binary.LittleEndian.Uint16(p.Data[24:])) == 0 {
		t.Fatal("clobbering a delivered packet changed later ones")
	}

	// 1 kHz: two sign changes per period, 2000 a second (a sample of 0
	// counts as positive).
	var cross int
	for k := 1; k < len(samples); k++ {
		if (samples[k-1] < 0) != (samples[k] < 0) {
			cross++
		}
	}
	if want := 2 * 1000 * len(samples) / 48000; cross < want-1 || cross > want+1 {
		t.Errorf("%d zero crossings in %d samples, want %d (1 kHz)", cross, len(samples), want)
	}
	// -12 dBFS peak, a quarter period in, and a pure sine everywhere.
	peak := 32767 * math.Pow(10, -12.0/20)
	for k, v := range samples {
		if want := peak * math.Sin(2*math.Pi*1000*float64(k)/48000); math.Abs(float64(v)-want) > 1 {
			t.Fatalf("sample %d = %d, want %.1f", k, v, want)
		}
	}
}

// TestSourcesPace checks that Realtime holds each packet until its PTS.
func TestSourcesPace(t *testing.T) {
	for _, src := range []Source{NewPatternSource(Realtime), NewToneSource(Realtime)} {
		start := Now()
		var last mkv.Packet
		for range 4 {
			p, err := src.Next(context.Background())
			if err != nil {
				t.Fatalf("next: %v", err)
			}
			if now := Now(); now < p.PTS {
				t.Fatalf("%v packet delivered at %v, before its pts %v", p.Kind, now, p.PTS)
			}
			last = p
		}
		if last.PTS-start < 3*20*time.Millisecond {
			t.Errorf("%v: 4 realtime packets span only %v", last.Kind, last.PTS-start)
		}
		src.Close()
	}
}

// TestSourcesClose checks that Close and ctx both end a blocked Next.
func TestSourcesClose(t *testing.T) {
	type held struct {
		name string
		src  Source
		clk  *synthClock
	}
	sources := func() []held {
		p, a := NewPatternSource(Realtime).(*patternSource), NewToneSource(Realtime).(*toneSource)
		return []held{{"pattern", p, &p.clk}, {"tone", a, &a.clk}}
	}
	// block takes a packet, makes the next one due in an hour, arranges for
	// stop to run shortly, and times the Next that it ends.
	block := func(h held, ctx context.Context, stop func()) (time.Duration, error) {
		if _, err := h.src.Next(ctx); err != nil {
			t.Fatalf("%s: first next: %v", h.name, err)
		}
		h.clk.base += time.Hour
		time.AfterFunc(50*time.Millisecond, stop)
		start := time.Now()
		_, err := h.src.Next(ctx)
		return time.Since(start), err
	}

	for _, h := range sources() {
		d, err := block(h, context.Background(), func() { h.src.Close() })
		if !errors.Is(err, errSynthClosed) || d < 40*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: close: next returned %v after %v", h.name, err, d)
		}
		if _, err := h.src.Next(context.Background()); !errors.Is(err, errSynthClosed) {
			t.Errorf("%s: next after close: %v", h.name, err)
		}
		if err := h.src.Close(); err != nil {
			t.Errorf("%s: second close: %v", h.name, err)
		}
	}

	for _, h := range sources() {
		ctx, cancel := context.WithCancel(context.Background())
		d, err := block(h, ctx, cancel)
		if !errors.Is(err, context.Canceled) || d < 40*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: cancel: next returned %v after %v", h.name, err, d)
		}
		if _, err := h.src.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: next with cancelled ctx: %v", h.name, err)
		}
		h.src.Close()
	}
}

func BenchmarkPatternFrame(b *testing.B) {
	src := NewPatternSource(Fast)
	defer src.Close()
	ctx := context.Background()
	var size int
	b.ReportAllocs()
	for b.Loop() {
		p, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p.Data)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	b.ReportMetric(float64(size), "bytes/frame")
}

func BenchmarkToneChunk(b *testing.B) {
	src := NewToneSource(Fast)
	defer src.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(1920)
	for b.Loop() {
		if _, err := src.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
