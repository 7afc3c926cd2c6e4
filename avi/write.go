package avi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"attune.dev/attune/mkv"
)

// A Writer writes an AVI 1.0 file of MJPEG video and, optionally, 16-bit
// PCM audio, the form Windows Media Player and VLC open (macOS's QuickTime
// Player does not; package mov writes the form it opens): the chunks are
// the packets' bytes unchanged (every MJPEG frame is a key frame, so a cut
// at any frame is lossless). AVI has no timestamps: frame n
// plays at n / FPS, and the audio follows from the samples before it, so the
// caller gives the frames in order at a steady rate and the audio whole.
// The sizes and the idx1 index are written at Close through out's Seek.
// Files beyond 1 GB (AVI 1.0's limit) are refused.
type Writer struct {
	out      io.WriteSeeker
	video    mkv.Track
	audio    *mkv.Track
	rate     uint32 // frames per second × 1000
	frames   uint32
	samples  uint32 // audio sample frames
	maxChunk uint32
	pos      int64 // bytes written so far
	moviPos  int64 // offset of the 'movi' FourCC
	idx      []byte
	err      error
}

// The offsets of the fields patched at Close.
const (
	aviRIFFSize   = 4
	aviTotalOff   = 12 + 12 + 8 + 16 // avih dwTotalFrames
	aviBufOff     = 12 + 12 + 8 + 28 // avih dwSuggestedBufferSize
	aviVidLenOff  = 12 + 12 + 64 + 12 + 8 + 32
	aviHdrlLength = 4 + 64 + (12 + 64 + 48) // 'hdrl', avih, strl video
	aviAudStrl    = 12 + 64 + 24            // LIST strl, strh, strf (WAVEFORMATEX without cbSize)
)

// NewWriter writes the headers of an AVI file holding video (MJPEG) and,
// if audio is not nil, audio (16-bit PCM).
func NewWriter(out io.WriteSeeker, video mkv.Track, audio *mkv.Track) (*Writer, error) {
	if video.Codec != mkv.CodecMJPEG || video.Width <= 0 || video.Height <= 0 {
		return nil, errors.New("avi: the video must be MJPEG with a size")
	}
	if audio != nil && (audio.Codec != mkv.CodecPCMS16 || audio.SampleRate <= 0 || audio.Channels <= 0) {
		return nil, errors.New("avi: the audio must be 16-bit PCM")
	}
	fps := video.FPS
	if fps <= 0 {
		fps = 30
	}
	w := &Writer{out: out, video: video, audio: audio, rate: uint32(math.Round(fps * 1000))}
	streams := uint32(1)
	hdrl := aviHdrlLength
	if audio != nil {
		streams, hdrl = 2, hdrl+aviAudStrl
	}
	var b []byte
	b = append(b, "RIFF"...)
	b = le32(b, 0) // patched
	b = append(b, "AVI LIST"...)
	b = le32(b, uint32(hdrl))
	b = append(b, "hdrlavih"...)
	b = le32(b, 56)
	b = le32(b, uint32(math.Round(1e6/fps))) // dwMicroSecPerFrame
	b = le32(b, 0)                           // dwMaxBytesPerSec
	b = le32(b, 0)                           // dwPaddingGranularity
	b = le32(b, 0x10|0x100)                  // AVIF_HASINDEX | AVIF_ISINTERLEAVED
	b = le32(b, 0)                           // dwTotalFrames, patched
	b = le32(b, 0)                           // dwInitialFrames
	b = le32(b, streams)
	b = le32(b, 0) // dwSuggestedBufferSize, patched
	b = le32(b, uint32(video.Width))
	b = le32(b, uint32(video.Height))
	b = append(b, make([]byte, 16)...)
	// Video stream.
	b = append(b, "LIST"...)
	b = le32(b, 4+64+48)
	b = append(b, "strlstrh"...)
	b = le32(b, 56)
	b = append(b, "vidsMJPG"...)
	b = le32(b, 0)          // dwFlags
	b = le32(b, 0)          // wPriority, wLanguage
	b = le32(b, 0)          // dwInitialFrames
	b = le32(b, 1000)       // dwScale
	b = le32(b, w.rate)     // dwRate
	b = le32(b, 0)          // dwStart
	b = le32(b, 0)          // dwLength, patched
	b = le32(b, 0)          // dwSuggestedBufferSize
	b = le32(b, 0xFFFFFFFF) // dwQuality
	b = le32(b, 0)          // dwSampleSize
	b = le16(b, 0)
	b = le16(b, 0)
	b = le16(b, uint16(video.Width))
	b = le16(b, uint16(video.Height))
	b = append(b, "strf"...)
	b = le32(b, 40)
	b = le32(b, 40)
	b = le32(b, uint32(video.Width))
	b = le32(b, uint32(video.Height))
	b = le16(b, 1)
	b = le16(b, 24)
	b = append(b, "MJPG"...)
	b = le32(b, uint32(video.Width*video.Height*3))
	b = append(b, make([]byte, 16)...)
	if audio != nil {
		align := uint32(2 * audio.Channels)
		b = append(b, "LIST"...)
		b = le32(b, aviAudStrl-8)
		b = append(b, "strlstrh"...)
		b = le32(b, 56)
		b = append(b, "auds"...)
		b = le32(b, 0)
		b = le32(b, 0)
		b = le32(b, 0)
		b = le32(b, 0)
		b = le32(b, 1)                        // dwScale
		b = le32(b, uint32(audio.SampleRate)) // dwRate: sample frames per second
		b = le32(b, 0)
		b = le32(b, 0) // dwLength, patched
		b = le32(b, 0)
		b = le32(b, 0xFFFFFFFF)
		b = le32(b, align) // dwSampleSize
		b = append(b, make([]byte, 8)...)
		b = append(b, "strf"...)
		b = le32(b, 16)
		b = le16(b, 1) // WAVE_FORMAT_PCM
		b = le16(b, uint16(audio.Channels))
		b = le32(b, uint32(audio.SampleRate))
		b = le32(b, uint32(audio.SampleRate)*align)
		b = le16(b, uint16(align))
		b = le16(b, 16)
	}
	w.moviPos = int64(len(b)) + 8
	b = append(b, "LIST"...)
	b = le32(b, 0) // patched
	b = append(b, "movi"...)
	w.write(b)
	return w, w.err
}

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.out.Write(b)
	w.pos += int64(n)
	if err != nil {
		w.err = fmt.Errorf("avi: %w", err)
	}
}

// WritePacket writes a frame or a run of audio samples as the next chunk.
func (w *Writer) WritePacket(p mkv.Packet) error {
	var id string
	switch {
	case p.Kind == mkv.Video:
		id = "00dc"
		w.frames++
	case p.Kind == mkv.Audio && w.audio != nil:
		id = "01wb"
		w.samples += uint32(len(p.Data) / (2 * w.audio.Channels))
	default:
		return nil
	}
	if w.pos+int64(len(p.Data))+int64(len(w.idx))+64 > 1<<30 {
		return errors.New("avi: the clip is over 1 GB; make it shorter or export Matroska")
	}
	off := uint32(w.pos - w.moviPos)
	flags := uint32(0)
	if p.Kind == mkv.Video {
		flags = 0x10 // AVIIF_KEYFRAME
	}
	w.idx = append(w.idx, id...)
	w.idx = le32(w.idx, flags)
	w.idx = le32(w.idx, off)
	w.idx = le32(w.idx, uint32(len(p.Data)))
	w.maxChunk = max(w.maxChunk, uint32(len(p.Data)))
	h := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(h[4:], uint32(len(p.Data)))
	w.write(h)
	w.write(p.Data)
	if len(p.Data)%2 == 1 {
		w.write([]byte{0})
	}
	return w.err
}

// Duration is the length of the video written so far.
func (w *Writer) Duration() time.Duration {
	return time.Duration(float64(w.frames) * 1e3 / float64(w.rate) * float64(time.Second))
}

// Close writes the index and patches the sizes.
func (w *Writer) Close() error {
	moviSize := w.pos - (w.moviPos - 8) - 8
	w.write(append(append([]byte("idx1"), le32(nil, uint32(len(w.idx)))...), w.idx...))
	end := w.pos
	w.patch(aviRIFFSize, uint32(end-8))
	w.patch(w.moviPos-4, uint32(moviSize))
	w.patch(aviTotalOff, w.frames)
	w.patch(aviBufOff, w.maxChunk)
	w.patch(aviVidLenOff, w.frames)
	if w.audio != nil {
		// The audio strh's dwLength: after hdrl's video strl, LIST strl strh header.
		w.patch(12+12+64+(12+64+48)+12+8+32, w.samples)
	}
	if w.err == nil {
		if _, err := w.out.Seek(end, io.SeekStart); err != nil {
			w.err = fmt.Errorf("avi: %w", err)
		}
	}
	return w.err
}

func (w *Writer) patch(off int64, v uint32) {
	if w.err != nil {
		return
	}
	if _, err := w.out.Seek(off, io.SeekStart); err != nil {
		w.err = fmt.Errorf("avi: %w", err)
		return
	}
	if _, err := w.out.Write(le32(nil, v)); err != nil {
		w.err = fmt.Errorf("avi: %w", err)
	}
}
