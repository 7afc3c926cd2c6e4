package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"attune.dev/attune/avi"
	"attune.dev/attune/laptop"
	"attune.dev/attune/mkv"
	"attune.dev/attune/mov"
)

// Format is the form a clip is written in.
type Format string

const (
	// MP4 is H.264 and AAC, made by ffmpeg: it plays on Windows' and
	// macOS's default players, phones and TVs.
	MP4 Format = "mp4"
	// MOV is the recorded MJPEG and PCM in a QuickTime movie, cut
	// losslessly at frame boundaries: no ffmpeg needed; QuickTime Player
	// and VLC open it.
	MOV Format = "mov"
	// AVI is the recorded MJPEG and PCM, cut losslessly at frame
	// boundaries: no ffmpeg needed; Windows Media Player and VLC open it
	// (macOS's QuickTime Player does not).
	AVI Format = "avi"
	// MKV is the recorded MJPEG and PCM in Matroska, cut losslessly.
	MKV Format = "mkv"
)

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimPrefix(s, "."))); f {
	case MP4, MOV, AVI, MKV:
		return f, nil
	}
	return "", fmt.Errorf("format %q: choose mp4 (needs ffmpeg), mov, avi or mkv", s)
}

// Describe says in words what a file of this format is.
func (f Format) Describe() string {
	switch f {
	case MP4:
		return "MP4 (H.264 video, AAC sound): plays everywhere"
	case MOV:
		return "QuickTime movie (the recorded pictures and sound, unchanged): opens in QuickTime Player and VLC"
	case AVI:
		return "AVI (the recorded pictures and sound, unchanged): opens in Windows Media Player and VLC"
	}
	return "Matroska (the recorded pictures and sound, unchanged): opens in VLC"
}

// ClipPackets are frames a to b (inclusive) of the film with the sound that goes with
// them, rebased to start at 0: each frame followed by the audio samples up
// to the next frame, the samples unchanged.
func (f *Film) ClipPackets(a, b int) ([]mkv.Packet, error) {
	if a < 0 || b >= f.Len() || a > b {
		return nil, fmt.Errorf("clip: frames %d to %d: the recording has frames 0 to %d, and the end must not be before the start", a, b, f.Len()-1)
	}
	base := f.PTS[a]
	fb := f.frameBytes()
	var out []mkv.Packet
	for i := a; i <= b; i++ {
		jpeg, err := f.Frame(i)
		if err != nil {
			return nil, fmt.Errorf("clip: %v", err)
		}
		out = append(out, mkv.Packet{Kind: mkv.Video, PTS: f.PTS[i] - base, Data: jpeg, Key: true})
		if f.Audio == nil || len(f.PCM) == 0 {
			continue
		}
		end := f.PTS[i] + f.FrameDuration()
		if i < b {
			end = f.PTS[i+1]
		}
		// Sample numbers from AudioStart; PCM holds them from lo on.
		lo := f.pcmBase / int64(fb)
		s0, s1 := max(lo, f.sampleAt(f.PTS[i])), max(lo, f.sampleAt(end))
		n := lo + int64(len(f.PCM)/fb)
		s0, s1 = min(s0, n), min(s1, n)
		if s1 > s0 {
			out = append(out, mkv.Packet{Kind: mkv.Audio, PTS: f.AudioStart + time.Duration(float64(s0)/float64(f.Audio.SampleRate)*float64(time.Second)) - base,
				Data: f.PCM[(s0-lo)*int64(fb) : (s1-lo)*int64(fb)], Key: true})
		}
	}
	return out, nil
}

func (f *Film) tracks() []mkv.Track {
	t := []mkv.Track{f.Video}
	if f.Audio != nil && len(f.PCM) > 0 {
		t = append(t, *f.Audio)
	}
	return t
}

// ClipOptions tunes WriteClip.
type ClipOptions struct {
	// FFmpeg is the ffmpeg program for MP4 ("" looks for it on the PATH).
	FFmpeg string
	// Preset and CRF of libx264 (default veryfast, 20).
	Preset string
	CRF    int
}

// FindFFmpeg is the path of ffmpeg on the PATH, or "".
func FindFFmpeg() string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return ""
	}
	return p
}

// WriteClip writes frames a to b (inclusive) to path in format, under a
// temporary name renamed once complete and on disk; it returns the file's
// digest for the record of the copy (laptop.ExportRecordOf). MP4 is
// encoded by ffmpeg, fed the plaintext through a pipe: nothing decrypted
// is written but the clip.
func (f *Film) WriteClip(ctx context.Context, a, b int, format Format, path string, opts ClipOptions) (laptop.Digest, error) {
	pkts, err := f.ClipPackets(a, b)
	if err != nil {
		return laptop.Digest{}, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part")
	switch format {
	case MP4:
		err = f.encodeMP4(ctx, pkts, tmp, opts)
	case MOV, AVI, MKV:
		err = f.writeLossless(pkts, format, tmp)
	default:
		err = fmt.Errorf("clip: unknown format %q", format)
	}
	var d laptop.Digest
	if err == nil {
		d, err = syncAndDigest(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return d, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return d, fmt.Errorf("clip: %v", err)
	}
	return d, nil
}

// syncAndDigest makes the file at path durable and hashes it, the two at
// once.
func syncAndDigest(path string) (laptop.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return laptop.Digest{}, fmt.Errorf("clip: %v", err)
	}
	defer f.Close()
	synced := make(chan error, 1)
	go func() { synced <- f.Sync() }()
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), make([]byte, 1<<20))
	if serr := <-synced; err == nil {
		err = serr
	}
	if err != nil {
		return laptop.Digest{}, fmt.Errorf("clip: %v", err)
	}
	return laptop.Digest{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func (f *Film) writeLossless(pkts []mkv.Packet, format Format, path string) error {
	out, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	defer out.Close()
	type packetWriter interface{ WritePacket(mkv.Packet) error }
	var w packetWriter
	var finish func() error
	if format == AVI || format == MOV {
		var aud *mkv.Track
		if t := f.tracks(); len(t) > 1 {
			aud = &t[1]
		}
		var fw interface {
			packetWriter
			Close() error
		}
		if format == MOV {
			fw, err = mov.NewWriter(out, f.Video, aud)
		} else {
			fw, err = avi.NewWriter(out, f.Video, aud)
		}
		if err != nil {
			return fmt.Errorf("clip: %v", err)
		}
		w, finish = fw, fw.Close
	} else {
		mw, err := mkv.NewFileWriter(out, f.tracks(), mkv.FileOptions{WritingApp: "attune"})
		if err != nil {
			return fmt.Errorf("clip: %v", err)
		}
		w, finish = mw, func() error { return mw.Finish(nil) }
	}
	for _, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			return fmt.Errorf("clip: %v", err)
		}
	}
	if err := finish(); err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	return out.Close()
}

// pipeSink is a live writer's sink on ffmpeg's stdin.
type pipeSink struct{ io.Writer }

func (pipeSink) Flush() error { return nil }

// FFmpegArgs are the arguments that make ffmpeg encode the Matroska stream
// on its stdin as the family's MP4 at out.
func FFmpegArgs(out string, opts ClipOptions) []string {
	preset, crf := opts.Preset, opts.CRF
	if preset == "" {
		preset = "veryfast"
	}
	if crf == 0 {
		crf = 20
	}
	return []string{"-hide_banner", "-nostats", "-loglevel", "error", "-f", "matroska", "-i", "pipe:0",
		"-map", "0", "-c:v", "libx264", "-preset", preset, "-crf", fmt.Sprint(crf), "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", "-y", out}
}

func (f *Film) encodeMP4(ctx context.Context, pkts []mkv.Packet, path string, opts ClipOptions) error {
	bin := opts.FFmpeg
	if bin == "" {
		if bin = FindFFmpeg(); bin == "" {
			return errors.New("clip: MP4 needs ffmpeg, which is not installed: install ffmpeg, or choose MOV (plays in QuickTime Player and VLC) or AVI (Windows Media Player and VLC)")
		}
	}
	args := FFmpegArgs(path, opts)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clip: start ffmpeg: %v", err)
	}
	werr := func() error {
		lw, err := mkv.NewLiveWriter(pipeSink{stdin}, f.tracks(), mkv.LiveOptions{WritingApp: "attune"})
		if err != nil {
			return err
		}
		for _, p := range pkts {
			if err := lw.WritePacket(p); err != nil {
				return err
			}
		}
		return lw.Close()
	}()
	stdin.Close()
	err = cmd.Wait()
	if err != nil {
		return fmt.Errorf("clip: ffmpeg: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if werr != nil {
		return fmt.Errorf("clip: feeding ffmpeg: %v", werr)
	}
	return nil
}
