package laptop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"attune.dev/attune/mkv"
)

// A Mark is a moment the practitioner marked during or after a recording.
type Mark struct {
	Offset time.Duration // from the start of the recording
	Label  string        // empty: "Mark N", N its rank by offset from 1
}

// ExportOptions tunes Export. The zero value is ready to use.
type ExportOptions struct {
	// ClusterDuration is the target length of a Cluster, and so the seek
	// granularity: a Cluster starts at the first video frame at or past it
	// (or at any block once a Cluster is twice as long, when video stalled).
	// Default 1 s, as the device writes.
	ClusterDuration time.Duration
	// Title is written as the Segment title, which players show. Optional.
	Title string
	// Date is the wall time the recording started, written as DateUTC.
	// Leave it zero when the device clock was not trusted.
	Date time.Time
	// WritingApp is recorded in Info. Default "attune".
	WritingApp string
	// Progress, if set, is called after each Cluster with the totals so far.
	Progress func(ExportInfo)
}

// ExportInfo summarises an export.
type ExportInfo struct {
	Duration     time.Duration // end of the last block: its time plus its length
	VideoFrames  int
	AudioSamples int64 // per channel
	Clusters     int
	Chapters     int   // marks written as chapters (marks past the end are not)
	Dropped      int   // blocks too far out of order to place (normally 0)
	Bytes        int64 // bytes written to out
	Gaps         []Gap // segments missing from the vault (ExportRecording)
}

// ErrDamaged is wrapped by the error Export returns when the stream holds
// something other than well-formed Matroska part-way through. The output is
// then nonetheless a finalized file of everything before the damage, and the
// ExportInfo describes it; the caller decides whether to keep it.
var ErrDamaged = errors.New("stream damaged")

// Export reads stream, the decrypted concatenation of a recording's segments
// (a live Matroska stream of MJPEG video and optional 16-bit PCM audio), and
// writes to out, from its current offset, a finalized Matroska file that
// players open, seek and show the length of:
//
//	EBML header (DocType matroska, version 4)
//	Segment (known size)
//	  SeekHead     → Info, Tracks, Cues, Chapters
//	  Void         (the rest of the space reserved for the SeekHead)
//	  Info         TimecodeScale 1 ms, Duration, MuxingApp, WritingApp
//	  Tracks       as in the stream: video track 1, audio track 2
//	  Cluster …    known sizes, about ClusterDuration each, each starting
//	               with a video frame; the blocks are copied unchanged
//	  Cues         one CuePoint per Cluster, on the video track
//	  Chapters     one ChapterAtom per mark, if there are marks
//
// Memory is bounded by one Cluster: blocks are read, buffered until their
// Cluster is complete, written and dropped. The header elements whose
// content is known only at the end (Segment size, SeekHead, Duration) are
// written as placeholders and patched in place through out's Seek; a file
// left behind by a crash during the export is still a playable live stream.
//
// A stream that is cut short (an interrupted recording, or one missing its
// last segments) exports everything up to its last complete block, without
// error. A stream damaged part-way exports what comes before the damage and
// returns an error wrapping ErrDamaged. Any other error (a stream that is not
// a recording, a write error, ctx ended) leaves out incomplete.
//
// Marks become chapters named by their labels, in offset order; a chapter
// ends where the next begins, the last at the end of the recording. Marks
// past the end of the recording are left out.
func Export(ctx context.Context, stream io.Reader, marks []Mark, out io.WriteSeeker, opts ExportOptions) (ExportInfo, error) {
	if err := ctx.Err(); err != nil {
		return ExportInfo{}, err
	}
	rd, err := mkv.NewReader(stream, true)
	if err != nil {
		return ExportInfo{}, fmt.Errorf("export: %w", err)
	}
	fo := mkv.FileOptions{
		ClusterDuration: opts.ClusterDuration,
		Title:           opts.Title,
		Date:            opts.Date,
		WritingApp:      opts.WritingApp,
	}
	if opts.Progress != nil {
		fo.Progress = func(s mkv.FileStats) { opts.Progress(exportInfo(s)) }
	}
	w, err := mkv.NewFileWriter(out, rd.Tracks(), fo)
	if err != nil {
		return ExportInfo{}, fmt.Errorf("export: %w", err)
	}
	var damage error
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			damage = err
			break
		}
		if err := ctx.Err(); err != nil {
			return exportInfo(w.Stats()), fmt.Errorf("export: %w", err)
		}
		if err := w.WritePacket(p); err != nil {
			return exportInfo(w.Stats()), fmt.Errorf("export: %w", err)
		}
		rd.Reuse(p.Data) // the writer copied it
	}
	if err := ctx.Err(); err != nil {
		return exportInfo(w.Stats()), fmt.Errorf("export: %w", err)
	}
	end := w.Stats().Duration
	if err := w.Finish(chapters(marks, end)); err != nil {
		return exportInfo(w.Stats()), fmt.Errorf("export: %w", err)
	}
	info := exportInfo(w.Stats())
	if damage != nil {
		return info, fmt.Errorf("export: %w after %v; the file holds everything before it: %w",
			ErrDamaged, info.Duration.Round(time.Millisecond), damage)
	}
	return info, nil
}

func exportInfo(s mkv.FileStats) ExportInfo {
	return ExportInfo{
		Duration:     s.Duration,
		VideoFrames:  s.VideoFrames,
		AudioSamples: s.AudioSamples,
		Clusters:     s.Clusters,
		Chapters:     s.Chapters,
		Dropped:      s.Dropped,
		Bytes:        s.Bytes,
	}
}

// chapters turns marks into the chapters of a recording of length end: one
// per mark in offset order, named by its label, ending where the next
// begins and the last at end (no end if that is not after its start).
// Marks past the end are left out. The writer numbers them from 1.
func chapters(marks []Mark, end time.Duration) []mkv.Chapter {
	var chs []mkv.Chapter
	for _, m := range namedMarks(marks) {
		if m.at > end {
			break
		}
		chs = append(chs, mkv.Chapter{Start: m.at, Title: m.label})
	}
	for i := range chs {
		stop := end
		if i+1 < len(chs) {
			stop = chs[i+1].Start
		}
		if stop > chs[i].Start {
			chs[i].End = stop
		}
	}
	return chs
}
