//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"attune.dev/attune/internal/benchdoc"
	"attune.dev/attune/laptop"
	"attune.dev/attune/laptop/review"
)

// The review workspace's exports against ffmpeg on the same footage
// (issue 12): a lossless 30 s clip against `ffmpeg -ss … -to … -c copy`,
// the family MP4 against `ffmpeg -c:v libx264` with the settings attune
// passes ffmpeg itself.
const (
	goalClipRatio = 1.0 // attune clip (mkv) wall / ffmpeg -c copy wall, at most
	goalMP4Ratio  = 1.1 // attune clip (mp4) wall / ffmpeg libx264 wall, at most

	clipFromS, clipToS = 15, 45 // the clip: 15 s to 45 s of the minute

	exportsStart = "<!-- benchclip:start -->"
	exportsEnd   = "<!-- benchclip:end -->"
	// Around benchrec's figures in the README's "How fast".
	readmeStart = "<!-- benchrec:readme:start -->"
	readmeEnd   = "<!-- benchrec:readme:end -->"
)

// exports is the clip benchmark's state: a laptop home whose vault holds
// the input recorded by attuned, as sync leaves it.
type exports struct {
	c    config
	in   input
	home string
	id   string // the recording
}

// setupExports records the input with attuned, sealed to a fresh X25519
// case of a fresh laptop home, and puts the recording in that home's vault.
func setupExports(ctx context.Context, c config, in input, dir string) (*exports, error) {
	h, err := laptop.OpenHome(filepath.Join(dir, "home"))
	if err != nil {
		return nil, err
	}
	cs, err := h.NewCase("benchrec", true, "")
	if err != nil {
		return nil, err
	}
	rcpt := filepath.Join(dir, "case-recipients.txt")
	if err := os.WriteFile(rcpt, []byte(strings.Join(cs.Recipients, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, c.attuned, "record", "--data", data, "--recipients", rcpt, "--source", "file:"+in.path, "--pace", "none")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("attuned record: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	id := strings.TrimSpace(out.String())
	vault := filepath.Join(h.Dir, "vault", cs.ID)
	if err := os.MkdirAll(vault, 0o700); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(data, "recordings", id), filepath.Join(vault, id)); err != nil {
		return nil, err
	}
	vr, err := h.FindRecording(id)
	if err != nil {
		return nil, err
	}
	if !vr.Synced() {
		return nil, fmt.Errorf("recording %s is not complete in the vault", id)
	}
	return &exports{c: c, in: in, home: h.Dir, id: id}, nil
}

// clipFrames are the first and last frames attune clip is given: 30 s
// from 15 s, the last one included.
func clipFrames() (int, int) { return clipFromS * inFPS, clipToS*inFPS - 1 }

// oursArgs give attune clip the clip as times, as ffmpeg is given it: the
// frame showing at 15 s to the one showing at the start of the last frame
// before 45 s.
func (e *exports) oursArgs(format, out string) []string {
	a, b := clipFrames()
	at := func(n int) string { return review.FormatTime(time.Duration(n) * time.Second / inFPS) }
	return []string{"clip", e.id, "--from", at(a), "--to", at(b), "--format", format, "--out", out, "--home", e.home}
}

// ffmpegCopyArgs cut the same 30 s of the plaintext input losslessly.
func (e *exports) ffmpegCopyArgs(out string) []string {
	return []string{"-nostdin", "-v", "error", "-ss", strconv.Itoa(clipFromS), "-to", strconv.Itoa(clipToS), "-i", e.in.path,
		"-map", "0", "-c", "copy", "-f", "matroska", "-y", out}
}

// ffmpegMP4Args are exactly the arguments attune clip gives ffmpeg
// (review.FFmpegArgs), reading the same 30 s of the plaintext input
// file instead of the Matroska stream attune pipes in.
func ffmpegMP4Args(in, out string) ([]string, error) {
	args := review.FFmpegArgs(out, review.ClipOptions{})
	i := slices.Index(args, "pipe:0")
	if i < 3 || !slices.Equal(args[i-3:i], []string{"-f", "matroska", "-i"}) {
		return nil, fmt.Errorf("review.FFmpegArgs no longer reads -f matroska -i pipe:0: %q", args)
	}
	src := []string{"-nostdin", "-ss", strconv.Itoa(clipFromS), "-to", strconv.Itoa(clipToS), "-i", in}
	return slices.Concat(args[:i-3], src, args[i+1:]), nil
}

// contenders are two pairs: lossless, then MP4, ours first in each.
func (e *exports) contenders() ([]*contender, error) {
	mp4Args, err := ffmpegMP4Args(e.in.path, filepath.Join(e.c.outdir, "clip-ffmpeg.mp4"))
	if err != nil {
		return nil, err
	}
	a, b := clipFrames()
	show := func(args []string) string {
		s := strings.Join(args, " ")
		return strings.NewReplacer(e.in.path, filepath.Base(e.in.path), e.home, "HOME", e.c.outdir+"/", "").Replace(s)
	}
	run := func(bin string, args []string, out string, want int) func(context.Context, bool) (sample, error) {
		return func(ctx context.Context, verify bool) (sample, error) {
			return e.run(ctx, bin, args, out, want, verify)
		}
	}
	frames := b - a + 1
	ours := func(format string) (string, []string) {
		out := filepath.Join(e.c.outdir, "clip-ours."+format)
		return out, e.oursArgs(format, out)
	}
	mkvOut, mkvArgs := ours("mkv")
	mp4Out, oursMP4 := ours("mp4")
	copyOut := filepath.Join(e.c.outdir, "clip-ffmpeg.mkv")
	copyArgs := e.ffmpegCopyArgs(copyOut)
	return []*contender{{
		label:   "attune clip --format mkv",
		command: "attune " + show(mkvArgs),
		run:     run(e.c.attune, mkvArgs, mkvOut, frames),
	}, {
		label:   "ffmpeg -c copy",
		command: "ffmpeg " + show(copyArgs),
		run:     run(e.c.ffmpeg, copyArgs, copyOut, frames),
	}, {
		label:   "attune clip --format mp4",
		command: "attune " + show(oursMP4),
		run:     run(e.c.attune, oursMP4, mp4Out, frames),
	}, {
		label:   "ffmpeg -c:v libx264",
		command: "ffmpeg " + show(mp4Args),
		run:     run(e.c.ffmpeg, mp4Args, filepath.Join(e.c.outdir, "clip-ffmpeg.mp4"), frames),
	}}, nil
}

// run times one export; the check run also counts the output's video
// frames with ffprobe.
func (e *exports) run(ctx context.Context, bin string, args []string, out string, frames int, verify bool) (sample, error) {
	defer os.Remove(out)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = io.Discard
	s, err := runStages(cmd)
	if err != nil {
		return s, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return s, err
	}
	s.outBytes = fi.Size()
	if verify {
		n, err := countFrames(ctx, e.c.ffprobe, out)
		if err != nil {
			return s, fmt.Errorf("%s: %v", filepath.Base(out), err)
		}
		if n < frames-1 || n > frames+1 {
			return s, fmt.Errorf("%s: %d video frames, want %d", filepath.Base(out), n, frames)
		}
	}
	return s, nil
}

// countFrames is the number of video packets ffprobe reads in path.
func countFrames(ctx context.Context, ffprobe, path string) (int, error) {
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("ffprobe: no packet count (%q)", strings.TrimSpace(string(out)))
	}
	return n, nil
}

// runRounds runs every contender once untimed (checking its output), then
// rounds times, alternating the order; progress goes to stderr.
func runRounds(ctx context.Context, c config, contenders []*contender, stderr io.Writer) error {
	for _, k := range contenders {
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		_, err := k.run(rctx, true)
		cancel()
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		if err != nil {
			return fmt.Errorf("check run: %s: %w", k.label, err)
		}
		fmt.Fprintf(stderr, "checked    %-24s output is complete\n", k.label)
	}
	for r := range c.rounds {
		order := slices.Clone(contenders)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			rctx, cancel := context.WithTimeout(ctx, c.timeout)
			s, err := k.run(rctx, false)
			cancel()
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			if err != nil {
				return fmt.Errorf("round %d: %s: %w", r+1, k.label, err)
			}
			k.samples = append(k.samples, s)
			fmt.Fprintf(stderr, "round %d/%d  %-24s cpu %6.2f s  rss %6.1f MB  wall %6.2f s  out %.1f MB\n",
				r+1, c.rounds, k.label, s.cpu().Seconds(), kbToMB(s.rssSumKB()), s.wall.Seconds(), float64(s.outBytes)/1e6)
		}
	}
	return nil
}

// exportsReport is the clip benchmark's section.
type exportsReport struct {
	when       time.Time
	in         input
	rounds     int
	contenders []*contender // mkv, copy, mp4, x264
	load       string
}

// ratio is ours/theirs by median wall time (below 1: ours is faster),
// and the same round by round.
func (r exportsReport) ratio(ours, theirs int) (float64, []float64) {
	o, t := r.contenders[ours], r.contenders[theirs]
	var rounds []float64
	if len(o.samples) == len(t.samples) {
		for i := range o.samples {
			rounds = append(rounds, o.samples[i].wall.Seconds()/t.samples[i].wall.Seconds())
		}
	}
	return wall(o).Med / wall(t).Med, rounds
}

// cpuRatio is ours/theirs by median CPU time: steadier than wall time on
// a shared machine.
func (r exportsReport) cpuRatio(ours, theirs int) float64 {
	cpu := func(k *contender) float64 {
		return over(k.samples, func(s sample) float64 { return s.cpu().Seconds() }).Med
	}
	return cpu(r.contenders[ours]) / cpu(r.contenders[theirs])
}

// ratioText is "×0.80 (round by round 0.70–0.90)".
func ratioText(x float64, rounds []float64) string {
	s := fmt.Sprintf("×%.2f", x)
	if len(rounds) > 1 {
		sum := benchdoc.Summarize(rounds)
		s += fmt.Sprintf(" (round by round %.2f–%.2f)", sum.Min, sum.Max)
	}
	return s
}

func (r exportsReport) table() string {
	var b strings.Builder
	b.WriteString("| | wall s | CPU s (ffmpeg's included for ours) | output MB |\n|---|---:|---:|---:|\n")
	for _, k := range r.contenders {
		out := over(k.samples, func(s sample) float64 { return float64(s.outBytes) / 1e6 })
		cpu := over(k.samples, func(s sample) float64 { return s.cpu().Seconds() })
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f |\n", cell(k.label), wall(k).Format(2), cpu.Format(2), out.Med)
	}
	clip, clipRounds := r.ratio(0, 1)
	mp4, mp4Rounds := r.ratio(2, 3)
	fmt.Fprintf(&b, "\nattune clip (mkv) / ffmpeg -c copy, wall time: %s (goal ≤ %.1f, at least as fast: %s), CPU ×%.2f; "+
		"attune clip (mp4) / ffmpeg -c:v libx264: %s (goal ≤ %.1f: %s), CPU ×%.2f.\n",
		ratioText(clip, clipRounds), goalClipRatio, verdict(clip <= goalClipRatio), r.cpuRatio(0, 1),
		ratioText(mp4, mp4Rounds), goalMP4Ratio, verdict(mp4 <= goalMP4Ratio), r.cpuRatio(2, 3))
	return b.String()
}

func (r exportsReport) markdown() string {
	var b strings.Builder
	b.WriteString(exportsStart + "\n")
	b.WriteString("## Review exports: `attune clip` against ffmpeg\n\n")
	fmt.Fprintf(&b, "_Written by `make bench` (`internal/benchrec`) on %s, load average %s at the start of benchrec; everything between the benchclip markers is replaced on each run._\n\n",
		r.when.Format("2006-01-02 15:04 MST"), r.load)
	a, z := clipFrames()
	fmt.Fprintf(&b, "The recording benchmark's input (%.0f s of %dx%d %d fps MJPEG + 48 kHz PCM, %.1f MB), recorded once by `attuned record` sealed to a fresh X25519 case "+
		"and put in that case's vault as `attune sync` leaves it. `attune clip` is given the times of frames %d to %d (%d s to %d s, %d frames): it decrypts segment 0 for the headers, "+
		"finds the segment a second before the start by the time of the cluster each segment starts with, and decrypts, checks and writes the clip from there as it reads (two workers decrypt ahead), "+
		"then fsyncs it and hashes it (SHA-256) for the record of the copy kept with the case, which ffmpeg does not do; "+
		"ffmpeg cuts the same %d s from the plaintext input file, which it finds already decrypted, seeking to %d s. "+
		"The MP4 baseline is ffmpeg with exactly the arguments `attune clip` gives the ffmpeg it feeds through a pipe (`review.FFmpegArgs`: libx264 `-preset veryfast -crf 20 -pix_fmt yuv420p`, AAC 128k, `+faststart`), "+
		"reading the file instead of the pipe. An untimed first run of each checked its output has the clip's %d frames (±1, ffprobe). "+
		"%s, each pair alternating; median (min–max); CPU is user + system time from `wait4`, ffmpeg's included in `attune clip --format mp4`'s.\n\n",
		r.in.seconds, inWidth, inHeight, inFPS, float64(r.in.size)/1e6, a, z, clipFromS, clipToS, z-a+1, clipToS-clipFromS, clipFromS, z-a+1, plural(r.rounds, "round"))
	b.WriteString(r.table())
	b.WriteString("\n```sh\n")
	for _, k := range r.contenders {
		fmt.Fprintf(&b, "%s\n", k.command)
	}
	b.WriteString("```\n")
	b.WriteString(exportsEnd + "\n")
	return b.String()
}

// readme is benchrec's lines in the README's "How fast": the recording
// figures and, when measured, the exports.
func readme(rec report, ex *exportsReport) string {
	cpuRatio, rssRatio, oursRSS := rec.ratios()
	var b strings.Builder
	fmt.Fprintf(&b, "- recording a minute of 720p30 MJPEG + PCM costs `attuned` %.2f CPU s and %.0f MB peak RSS: ×%.2f the CPU of `ffmpeg -c copy | age`, "+
		"which does not seal, fsync and hash every second, at ×%.2f its memory (median of %s).",
		rec.cpu(rec.contenders[0]).Med, oursRSS, cpuRatio, rssRatio, plural(rec.rounds, "round"))
	if ex != nil {
		clip, clipRounds := ex.ratio(0, 1)
		mp4, mp4Rounds := ex.ratio(2, 3)
		fmt.Fprintf(&b, "\n- `attune clip` cuts 30 s losslessly out of that minute, sealed in the vault, in %.2f s: %s the time of `ffmpeg -ss … -to … -c copy` on the plaintext file "+
			"(×%.2f its CPU); the family MP4 in %.2f s, %s the time of `ffmpeg -c:v libx264` with the same settings (×%.2f its CPU; median of %s).",
			wall(ex.contenders[0]).Med, ratioText(clip, clipRounds), ex.cpuRatio(0, 1), wall(ex.contenders[2]).Med, ratioText(mp4, mp4Rounds), ex.cpuRatio(2, 3), plural(ex.rounds, "round"))
	}
	fmt.Fprintf(&b, " Measured %s, load average %s at the start (the machine is shared).", rec.when.Format("2006-01-02"), rec.machine.load)
	return b.String()
}
