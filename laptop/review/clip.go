package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

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

func (f *Film) checkRange(a, b int) error {
	if a < 0 || b >= f.Len() || a > b {
		return fmt.Errorf("clip: frames %d to %d: the recording has frames 0 to %d, and the end must not be before the start", a, b, f.Len()-1)
	}
	return nil
}

// framePackets appends frame i of a clip whose last frame is b (-1: a
// later one) to out, rebased to base: the frame, then its sound, up to the
// next frame (to the end of the frame's time for the last).
func (f *Film) framePackets(out []mkv.Packet, i, b int, base time.Duration) ([]mkv.Packet, error) {
	jpeg, err := f.Frame(i)
	if err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	out = append(out, mkv.Packet{Kind: mkv.Video, PTS: f.PTS[i] - base, Data: jpeg, Key: true})
	if f.Audio == nil || len(f.PCM) == 0 {
		return out, nil
	}
	end := f.PTS[i] + f.FrameDuration()
	if i != b {
		end = f.PTS[i+1]
	}
	// Sample numbers from AudioStart; PCM holds them from lo on.
	fb := f.frameBytes()
	lo := f.pcmBase / int64(fb)
	s0, s1 := max(lo, f.sampleAt(f.PTS[i])), max(lo, f.sampleAt(end))
	n := lo + int64(len(f.PCM)/fb)
	s0, s1 = min(s0, n), min(s1, n)
	if s1 > s0 {
		out = append(out, mkv.Packet{Kind: mkv.Audio, PTS: f.AudioStart + time.Duration(float64(s0)/float64(f.Audio.SampleRate)*float64(time.Second)) - base,
			Data: f.PCM[(s0-lo)*int64(fb) : (s1-lo)*int64(fb)], Key: true})
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
	if err := f.checkRange(a, b); err != nil {
		return laptop.Digest{}, err
	}
	cw, err := openClip(ctx, f.tracks(), format, path, opts)
	if err != nil {
		return laptop.Digest{}, err
	}
	for i := a; i <= b; i++ {
		if err := cw.frame(f, i, b, f.PTS[a]); err != nil {
			cw.discard()
			return laptop.Digest{}, err
		}
	}
	return cw.close()
}

// WriteSpan writes the frames from one point of a vault recording to
// another (both included) as a clip, as LoadSpan reads them: each frame
// and its sound go to the file once no packet still to come can change
// them (two seconds of the recording later), so reading, decrypting and
// writing overlap, and the frames written are not kept. It returns the
// span read (its times, not its frames) and the clip's digest.
func WriteSpan(ctx context.Context, vr laptop.VaultRecording, id age.Identity, from, to Point, format Format, path string, opts ClipOptions) (*Film, laptop.Digest, error) {
	if _, err := ParseFormat(string(format)); err != nil {
		return nil, laptop.Digest{}, err
	}
	var cw *clipWriter
	next := 0 // frames written
	sp := &span{from: from, to: to}
	sp.emit = func(f *Film, head time.Duration, final bool) error {
		for ; next < f.Len(); next++ {
			b := -1
			if final {
				b = f.Len() - 1
			} else if next+1 >= f.Len() || f.PTS[next+1]+writeBehind > head {
				return nil
			}
			if cw == nil {
				var err error
				if cw, err = openClip(ctx, f.tracks(), format, path, opts); err != nil {
					return err
				}
			}
			if err := cw.frame(f, next, b, f.PTS[0]); err != nil {
				return err
			}
			sp.reuse(f.frames[next]) // the writers keep no packet's data
			f.frames[next] = nil
		}
		return nil
	}
	f, err := loadFilm(ctx, vr, id, sp)
	if err != nil {
		if cw != nil {
			cw.discard()
		}
		if !strings.HasPrefix(err.Error(), "clip: ") { // the writer's errors say it already
			err = fmt.Errorf("clip: %w", err)
		}
		return nil, laptop.Digest{}, err
	}
	d, err := cw.close()
	return f, d, err
}

// writeBehind is how far behind the packets read WriteSpan writes: sound
// the device wrote late still finds its frame.
const writeBehind = 2 * time.Second

// clipWriter is a clip file being written: a lossless one by our writers,
// an MP4 by ffmpeg fed through a pipe.
type clipWriter struct {
	tmp, path string
	w         interface{ WritePacket(mkv.Packet) error }
	finish    func() error // completes the file
	abort     func()       // gives it up
	pkts      []mkv.Packet // scratch for frame
}

func openClip(ctx context.Context, tracks []mkv.Track, format Format, path string, opts ClipOptions) (*clipWriter, error) {
	cw := &clipWriter{tmp: filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".part"), path: path}
	var err error
	switch format {
	case MP4:
		err = cw.openMP4(ctx, tracks, opts)
	case MOV, AVI, MKV:
		err = cw.openLossless(tracks, format)
	default:
		err = fmt.Errorf("clip: unknown format %q", format)
	}
	if err != nil {
		os.Remove(cw.tmp)
		return nil, err
	}
	return cw, nil
}

// frame writes frame i of f and its sound, of a clip whose last frame is
// b (-1: a later one), rebased to base (Film.framePackets).
func (cw *clipWriter) frame(f *Film, i, b int, base time.Duration) error {
	var err error
	if cw.pkts, err = f.framePackets(cw.pkts[:0], i, b, base); err != nil {
		return err
	}
	for _, p := range cw.pkts {
		if err := cw.w.WritePacket(p); err != nil {
			return fmt.Errorf("clip: %v", err)
		}
	}
	return nil
}

// close completes the file, makes it durable and hashes it, and gives it
// its name.
func (cw *clipWriter) close() (laptop.Digest, error) {
	err := cw.finish()
	var d laptop.Digest
	if err == nil {
		d, err = syncAndDigest(cw.tmp)
	}
	if err == nil {
		if err = os.Rename(cw.tmp, cw.path); err != nil {
			err = fmt.Errorf("clip: %v", err)
		}
	}
	if err != nil {
		os.Remove(cw.tmp)
		return laptop.Digest{}, err
	}
	return d, nil
}

func (cw *clipWriter) discard() {
	cw.abort()
	os.Remove(cw.tmp)
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
	d, err := laptop.FileDigest(path)
	if serr := <-synced; err == nil {
		err = serr
	}
	if err != nil {
		return laptop.Digest{}, fmt.Errorf("clip: %v", err)
	}
	return d, nil
}

func (cw *clipWriter) openLossless(tracks []mkv.Track, format Format) error {
	out, err := os.OpenFile(cw.tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	var finish func() error
	switch format {
	case AVI, MOV:
		var aud *mkv.Track
		if len(tracks) > 1 {
			aud = &tracks[1]
		}
		var fw interface {
			WritePacket(mkv.Packet) error
			Close() error
		}
		if format == MOV {
			fw, err = mov.NewWriter(out, tracks[0], aud)
		} else {
			fw, err = avi.NewWriter(out, tracks[0], aud)
		}
		cw.w, finish = fw, func() error { return fw.Close() }
	default:
		var mw *mkv.FileWriter
		mw, err = mkv.NewFileWriter(out, tracks, mkv.FileOptions{WritingApp: "attune"})
		cw.w, finish = mw, func() error { return mw.Finish(nil) }
	}
	if err != nil {
		out.Close()
		return fmt.Errorf("clip: %v", err)
	}
	cw.finish = func() error {
		err := finish()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("clip: %v", err)
		}
		return nil
	}
	cw.abort = func() { out.Close() }
	return nil
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

func (cw *clipWriter) openMP4(ctx context.Context, tracks []mkv.Track, opts ClipOptions) error {
	bin := opts.FFmpeg
	if bin == "" {
		if bin = FindFFmpeg(); bin == "" {
			return errors.New("clip: MP4 needs ffmpeg, which is not installed: install ffmpeg, or choose MOV (plays in QuickTime Player and VLC) or AVI (Windows Media Player and VLC)")
		}
	}
	cmd := exec.CommandContext(ctx, bin, FFmpegArgs(cw.tmp, opts)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("clip: %v", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clip: start ffmpeg: %v", err)
	}
	lw, err := mkv.NewLiveWriter(pipeSink{stdin}, tracks, mkv.LiveOptions{WritingApp: "attune"})
	if err != nil {
		stdin.Close()
		cmd.Wait()
		return fmt.Errorf("clip: feeding ffmpeg: %v", err)
	}
	cw.w = lw
	cw.finish = func() error {
		werr := lw.Close()
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("clip: ffmpeg: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		if werr != nil {
			return fmt.Errorf("clip: feeding ffmpeg: %v", werr)
		}
		return nil
	}
	cw.abort = func() {
		stdin.Close()
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		cmd.Wait()
	}
	return nil
}
