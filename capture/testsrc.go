package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"
	"time"

	"attune.dev/attune/mkv"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// errSynthClosed is returned by Next of a test source after Close.
var errSynthClosed = errors.New("next: test source closed")

// synthClock times a generated stream. The stream starts at Now() on the
// first call to wait; under Realtime pace each packet is held back until the
// capture clock reaches its PTS.
type synthClock struct {
	pace    Pace
	closed  context.Context // done once Close is called
	close   context.CancelFunc
	started bool
	base    time.Duration
}

func newSynthClock(pace Pace) synthClock {
	closed, cancel := context.WithCancel(context.Background())
	return synthClock{pace: pace, closed: closed, close: cancel}
}

// wait returns the PTS of the packet at offset off into the stream, after
// waiting for it under Realtime pace. Close and ctx both end the wait.
func (c *synthClock) wait(ctx context.Context, off time.Duration) (time.Duration, error) {
	if c.closed.Err() != nil {
		return 0, errSynthClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !c.started {
		c.base, c.started = Now(), true
	}
	pts := c.base + off
	if c.pace == Realtime && pts > Now() {
		wctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(c.closed, cancel)
		err := sleepUntil(wctx, pts)
		stop()
		cancel()
		if err != nil {
			if c.closed.Err() != nil {
				return 0, errSynthClosed
			}
			return 0, ctx.Err()
		}
	}
	return pts, nil
}

// The test pattern: 75% colour bars scrolling right by patternStep pixels a
// frame, under a dark panel with a title, a frame counter and the elapsed
// time. Every element is aligned to the 16x16 tile grid so that a frame is
// drawn from a small set of precoded tiles (see jpegTiler): bar tiles for
// each sub-tile scroll offset, and glyph cells of 1x2 (small) or 2x4 (large)
// tiles.
const (
	patternW, patternH = 1280, 720
	patternFPS         = 30
	patternCols        = patternW / jpegTile
	patternRows        = patternH / jpegTile
	patternBarW        = 160 // 8 bars across the frame
	patternStep        = 4   // scroll, pixels per frame (a full cycle is 320 frames)
	patternQuality     = 90

	// Panel and text positions, in tiles.
	panelCol, panelRow   = 25, 15
	panelCols, panelRows = 30, 14
	titleCol, titleRow   = 30, 16 // small cells
	labelCol             = 27     // small cells, beside the values
	valueCol             = 34     // large cells
	counterRow           = 19
	clockRow             = 24
	counterLen, clockLen = 6, 9 // "000123", "mm:ss.mmm"
)

var (
	patternBars = [8]color.RGBA{
		{191, 191, 191, 255}, {191, 191, 0, 255}, {0, 191, 191, 255}, {0, 191, 0, 255},
		{191, 0, 191, 255}, {191, 0, 0, 255}, {0, 0, 191, 255}, {0, 0, 0, 255},
	}
	panelBG = color.RGBA{32, 32, 32, 255}
	panelFG = color.RGBA{255, 255, 255, 255}
)

// glyphCell sizes a character cell of basicfont.Face7x13 scaled up.
type glyphCell struct{ scale, cols, rows int }

var (
	smallCell = glyphCell{2, 1, 2} // 12x26 glyph in 16x32
	largeCell = glyphCell{4, 2, 4} // 24x52 glyph in 32x64
)

// patternArt is the precoded, immutable material shared by all pattern sources.
type patternArt struct {
	enc    *jpegTiler
	bar    [patternW / patternStep]uint16 // bar tile whose left edge is at pattern x = i*patternStep
	static [patternCols * patternRows]int32
	large  [128][8]uint16 // large glyph tiles per ASCII character, row-major in the cell
}

var loadPatternArt = sync.OnceValue(func() *patternArt {
	a, err := buildPatternArt()
	if err != nil {
		panic(err) // deterministic: a bug, not a runtime condition
	}
	return a
})

func buildPatternArt() (*patternArt, error) {
	enc, err := newJPEGTiler(patternW, patternH, patternQuality)
	if err != nil {
		return nil, err
	}
	a := &patternArt{enc: enc}
	tile := image.NewRGBA(image.Rect(0, 0, jpegTile, jpegTile))
	add := func(img *image.RGBA, x, y int) (uint16, error) {
		for ty := range jpegTile {
			for tx := range jpegTile {
				tile.SetRGBA(tx, ty, img.RGBAAt(x+tx, y+ty))
			}
		}
		id, err := enc.add(tile)
		return uint16(id), err
	}

	// Bars: one pattern row, cut at every scroll offset.
	strip := image.NewRGBA(image.Rect(0, 0, patternW+jpegTile, jpegTile))
	for x := range strip.Rect.Dx() {
		for y := range jpegTile {
			strip.SetRGBA(x, y, patternBars[x%patternW/patternBarW])
		}
	}
	for i := range a.bar {
		if a.bar[i], err = add(strip, i*patternStep, 0); err != nil {
			return nil, err
		}
	}

	// Static overlay: the panel, the title and the labels; -1 shows the bars.
	for i := range a.static {
		a.static[i] = -1
	}
	blank := image.NewRGBA(image.Rect(0, 0, jpegTile, jpegTile))
	fillRGBA(blank, panelBG)
	bg, err := add(blank, 0, 0)
	if err != nil {
		return nil, err
	}
	for r := panelRow; r < panelRow+panelRows; r++ {
		for c := panelCol; c < panelCol+panelCols; c++ {
			a.static[r*patternCols+c] = int32(bg)
		}
	}
	putSmall := func(col, row int, s string) error {
		for i := range len(s) {
			ids, err := glyphTiles(add, smallCell, s[i])
			if err != nil {
				return err
			}
			for k, id := range ids {
				a.static[(row+k)*patternCols+col+i] = int32(id)
			}
		}
		return nil
	}
	for _, t := range []struct {
		col, row int
		s        string
	}{
		{titleCol, titleRow, "ATTUNE TEST PATTERN"},
		{labelCol, counterRow + 1, "FRAME"},
		{labelCol, clockRow + 1, "TIME"},
	} {
		if err := putSmall(t.col, t.row, t.s); err != nil {
			return nil, err
		}
	}

	// Large glyphs for the counter and the clock.
	for _, ch := range []byte("0123456789:.") {
		ids, err := glyphTiles(add, largeCell, ch)
		if err != nil {
			return nil, err
		}
		copy(a.large[ch][:], ids)
	}
	return a, nil
}

// glyphTiles draws ch in a cell of size g and returns the cell's tile ids,
// row-major.
func glyphTiles(add func(*image.RGBA, int, int) (uint16, error), g glyphCell, ch byte) ([]uint16, error) {
	cell, err := drawGlyph(g, ch)
	if err != nil {
		return nil, err
	}
	var ids []uint16
	for r := range g.rows {
		for c := range g.cols {
			id, err := add(cell, c*jpegTile, r*jpegTile)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// drawGlyph draws ch white on the panel background, basicfont.Face7x13
// scaled up and centred in a cell of size g.
func drawGlyph(g glyphCell, ch byte) (*image.RGBA, error) {
	face := basicfont.Face7x13
	w, h := g.cols*jpegTile, g.rows*jpegTile
	cell := image.NewRGBA(image.Rect(0, 0, w, h))
	fillRGBA(cell, panelBG)
	dr, mask, mp, _, ok := face.Glyph(fixed.P(0, face.Ascent), rune(ch))
	if !ok {
		return nil, fmt.Errorf("draw glyph: no glyph for %q", ch)
	}
	ox, oy := (w-face.Width*g.scale)/2, (h-(face.Ascent+face.Descent)*g.scale)/2
	for y := range dr.Dy() {
		for x := range dr.Dx() {
			if _, _, _, al := mask.At(mp.X+x, mp.Y+y).RGBA(); al < 0x8000 {
				continue
			}
			for py := range g.scale {
				for px := range g.scale {
					cell.SetRGBA(ox+(dr.Min.X+x)*g.scale+px, oy+(dr.Min.Y+y)*g.scale+py, panelFG)
				}
			}
		}
	}
	return cell, nil
}

func fillRGBA(img *image.RGBA, c color.RGBA) {
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

type patternSource struct {
	art  *patternArt
	clk  synthClock
	n    int64    // frames delivered
	grid []uint16 // tile id per MCU, rebuilt for every frame
}

// NewPatternSource returns a video-only source of 1280x720 MJPEG frames at
// 30 fps: colour bars scrolling right under a six-digit frame counter and the
// elapsed time (mm:ss.mmm; the counter wraps at a million frames and the
// minutes at 100). Frame i has PTS base + i*(1s/30), where base is Now() at
// the first Next. Frames are assembled from precoded tiles and cost a few
// tens of microseconds each.
func NewPatternSource(pace Pace) Source {
	return &patternSource{
		art:  loadPatternArt(),
		clk:  newSynthClock(pace),
		grid: make([]uint16, patternCols*patternRows),
	}
}

func (s *patternSource) Tracks() []mkv.Track {
	return []mkv.Track{{Kind: mkv.Video, Codec: mkv.CodecMJPEG, Width: patternW, Height: patternH, FPS: patternFPS}}
}

func (s *patternSource) Next(ctx context.Context) (mkv.Packet, error) {
	// Computed from the index, not accumulated, so the PTS never drifts.
	off := time.Duration(s.n) * time.Second / patternFPS
	pts, err := s.clk.wait(ctx, off)
	if err != nil {
		return mkv.Packet{}, err
	}
	data := s.render(s.n, off)
	s.n++
	return mkv.Packet{Kind: mkv.Video, PTS: pts, Data: data, Key: true}, nil
}

func (s *patternSource) Close() error {
	s.clk.close()
	return nil
}

// render lays out frame i, elapsed into the stream, and assembles its JPEG.
func (s *patternSource) render(i int64, elapsed time.Duration) []byte {
	a := s.art
	shift := int(i%int64(len(a.bar))) * patternStep
	var bars [patternCols]uint16
	for c := range bars {
		u := (c*jpegTile - shift + patternW) % patternW
		bars[c] = a.bar[u/patternStep]
	}
	for k, id := range a.static {
		if id >= 0 {
			s.grid[k] = uint16(id)
		} else {
			s.grid[k] = bars[k%patternCols]
		}
	}

	var counter [counterLen]byte
	for k, n := counterLen-1, i; k >= 0; k, n = k-1, n/10 {
		counter[k] = '0' + byte(n%10)
	}
	ms := elapsed.Milliseconds()
	mm, ss, mmm := ms/60000%100, ms/1000%60, ms%1000
	clock := [clockLen]byte{
		'0' + byte(mm/10), '0' + byte(mm%10), ':',
		'0' + byte(ss/10), '0' + byte(ss%10), '.',
		'0' + byte(mmm/100), '0' + byte(mmm/10%10), '0' + byte(mmm%10),
	}
	s.putLarge(valueCol, counterRow, counter[:])
	s.putLarge(valueCol, clockRow, clock[:])
	return a.enc.frame(s.grid)
}

func (s *patternSource) putLarge(col, row int, text []byte) {
	for i, ch := range text {
		ids := &s.art.large[ch]
		for r := range largeCell.rows {
			for c := range largeCell.cols {
				s.grid[(row+r)*patternCols+col+i*largeCell.cols+c] = ids[r*largeCell.cols+c]
			}
		}
	}
}

// The tone: a 1 kHz sine at -12 dBFS, 48 kHz mono s16le, in 20 ms packets.
// A packet holds exactly 20 periods, so every packet is the same bytes.
const (
	toneRate    = 48000
	toneFreq    = 1000
	tonePacket  = 20 * time.Millisecond
	toneSamples = toneRate * int(tonePacket/time.Millisecond) / 1000 // 960
	tonePeriod  = toneRate / toneFreq                                // 48 samples
)

// tonePCM is one packet of samples, computed once from one period.
var tonePCM = sync.OnceValue(func() []byte {
	amp := math.MaxInt16 * math.Pow(10, -12.0/20) // peak amplitude
	period := make([]byte, 2*tonePeriod)
	for k := range tonePeriod {
		v := math.Round(amp * math.Sin(2*math.Pi*float64(k)/tonePeriod))
		binary.LittleEndian.PutUint16(period[2*k:], uint16(int16(v)))
	}
	return bytes.Repeat(period, toneSamples/tonePeriod)
})

type toneSource struct {
	clk synthClock
	n   int64
	pcm []byte
}

// NewToneSource returns an audio-only source of a 1 kHz sine at about
// -12 dBFS: 48 kHz mono signed 16-bit little-endian PCM in 20 ms packets of
// 960 samples. Packet n has PTS base + n*20ms, where base is Now() at the
// first Next.
func NewToneSource(pace Pace) Source {
	return &toneSource{clk: newSynthClock(pace), pcm: tonePCM()}
}

func (s *toneSource) Tracks() []mkv.Track {
	return []mkv.Track{{Kind: mkv.Audio, Codec: mkv.CodecPCMS16, SampleRate: toneRate, Channels: 1, BitDepth: 16}}
}

func (s *toneSource) Next(ctx context.Context) (mkv.Packet, error) {
	pts, err := s.clk.wait(ctx, time.Duration(s.n)*tonePacket)
	if err != nil {
		return mkv.Packet{}, err
	}
	s.n++
	return mkv.Packet{Kind: mkv.Audio, PTS: pts, Data: bytes.Clone(s.pcm), Key: true}, nil
}

func (s *toneSource) Close() error {
	s.clk.close()
	return nil
}
