package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// A jpegTiler assembles baseline JPEG frames from precoded 16x16 tiles, so a
// synthetic 720p frame costs a few thousand small appends instead of a JPEG
// encode.
//
// The trick is a restart interval of one MCU (DRI = 1). With 4:2:0 sampling
// an MCU is 16x16 pixels (four Y blocks, one Cb, one Cr). At every restart
// marker a decoder resets its DC predictors to zero and realigns to a byte
// boundary, so the entropy-coded bytes of each MCU depend on that MCU's
// pixels alone. Encoding a 16x16 image with image/jpeg yields exactly one MCU
// coded from fresh predictors, using the standard Huffman tables and padded
// to a byte with 1-bits: its scan data (between the SOS header and EOI) is
// precisely that MCU's restart interval. A frame is then
//
//	SOI DQT SOF0(w x h) DHT DRI(1) SOS  mcu0 RST0 mcu1 RST1 ... RST7 mcu8 RST0 ... mcuN-1  EOI
//
// with no RST after the last MCU. DQT, DHT and SOS are taken from the same
// encoder output, so the tables match the tiles.
type jpegTiler struct {
	cols, rows int    // frame size in MCUs
	quality    int    // image/jpeg quality of every tile
	header     []byte // SOI up to and including SOS, set by the first add
	tables     []byte // DQT and DHT segments of the first tile, to check later ones
	tiles      [][]byte
	ids        map[string]int // tile pixels -> index in tiles
}

const jpegTile = 16 // MCU size in pixels for 4:2:0 sampling

func newJPEGTiler(width, height, quality int) (*jpegTiler, error) {
	if width <= 0 || height <= 0 || width%jpegTile != 0 || height%jpegTile != 0 || width > 0xFFFF || height > 0xFFFF {
		return nil, fmt.Errorf("jpeg tiler: frame %dx%d is not a multiple of %d", width, height, jpegTile)
	}
	return &jpegTiler{
		cols:    width / jpegTile,
		rows:    height / jpegTile,
		quality: quality,
		ids:     make(map[string]int),
	}, nil
}

// add returns the id of a 16x16 tile, encoding it if its pixels are new.
func (t *jpegTiler) add(img *image.RGBA) (int, error) {
	if img.Rect.Dx() != jpegTile || img.Rect.Dy() != jpegTile {
		return 0, fmt.Errorf("jpeg tiler: add: tile is %v, want %dx%d", img.Rect, jpegTile, jpegTile)
	}
	var key []byte
	for y := range jpegTile {
		i := img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y)
		key = append(key, img.Pix[i:i+4*jpegTile]...)
	}
	if id, ok := t.ids[string(key)]; ok {
		return id, nil
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: t.quality}); err != nil {
		return 0, fmt.Errorf("jpeg tiler: add: %w", err)
	}
	head, sos, scan, err := splitJPEG(buf.Bytes())
	if err != nil {
		return 0, fmt.Errorf("jpeg tiler: add: %w", err)
	}
	var sof, tables []byte
	for _, seg := range head {
		switch seg[1] {
		case 0xC0:
			sof = seg
		case 0xDB, 0xC4: // DQT, DHT
			tables = append(tables, seg...)
		}
	}
	// SOF0 for 3 components, luma sampled 2x2 and chroma 1x1: 4:2:0.
	if len(sof) != 19 || sof[9] != 3 || sof[11] != 0x22 || sof[14] != 0x11 || sof[17] != 0x11 {
		return 0, errors.New("jpeg tiler: add: encoder did not produce a 4:2:0 baseline frame")
	}
	if t.header == nil {
		t.tables = tables
		t.header = t.frameHeader(head, sos)
	} else if !bytes.Equal(tables, t.tables) {
		return 0, errors.New("jpeg tiler: add: encoder tables changed between tiles")
	}
	t.tiles = append(t.tiles, bytes.Clone(scan))
	t.ids[string(key)] = len(t.tiles) - 1
	return len(t.tiles) - 1, nil
}

// frameHeader rebuilds the encoder's header for the full frame size and adds
// DRI = 1 before SOS.
func (t *jpegTiler) frameHeader(head [][]byte, sos []byte) []byte {
	h := []byte{0xFF, 0xD8}
	for _, seg := range head {
		if seg[1] == 0xC0 {
			i := len(h)
			h = append(h, seg...)
			binary.BigEndian.PutUint16(h[i+5:], uint16(t.rows*jpegTile)) // height
			binary.BigEndian.PutUint16(h[i+7:], uint16(t.cols*jpegTile)) // width
			continue
		}
		h = append(h, seg...)
	}
	h = append(h, 0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01) // DRI: restart every MCU
	return append(h, sos...)
}

// frame assembles a complete JPEG from one tile id per MCU in raster order.
// The result is freshly allocated at its exact size.
func (t *jpegTiler) frame(ids []uint16) []byte {
	n := len(t.header) + 2*len(ids) // RSTs between MCUs, plus EOI
	for _, id := range ids {
		n += len(t.tiles[id])
	}
	b := make([]byte, 0, n)
	b = append(b, t.header...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, 0xFF, 0xD0+byte((i-1)&7)) // RSTm, m counting mod 8
		}
		b = append(b, t.tiles[id]...)
	}
	return append(b, 0xFF, 0xD9)
}

// splitJPEG splits a baseline JPEG into the marker segments between SOI and
// SOS (each starting at its 0xFF), the SOS segment and the entropy-coded data
// up to EOI. It expects a single scan, as image/jpeg writes.
func splitJPEG(b []byte) (head [][]byte, sos, scan []byte, err error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 || b[len(b)-2] != 0xFF || b[len(b)-1] != 0xD9 {
		return nil, nil, nil, errors.New("split jpeg: missing SOI or EOI")
	}
	for p := 2; p+4 <= len(b); {
		if b[p] != 0xFF {
			return nil, nil, nil, fmt.Errorf("split jpeg: no marker at offset %d", p)
		}
		end := p + 2 + int(binary.BigEndian.Uint16(b[p+2:]))
		if end > len(b)-2 {
			return nil, nil, nil, fmt.Errorf("split jpeg: segment at offset %d overruns", p)
		}
		if b[p+1] == 0xDA {
			return head, b[p:end], b[end : len(b)-2], nil
		}
		head = append(head, b[p:end])
		p = end
	}
	return nil, nil, nil, errors.New("split jpeg: no SOS")
}
