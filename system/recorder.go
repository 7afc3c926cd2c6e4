package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"attune.dev/attune/capture"
	"attune.dev/attune/custody"
	"attune.dev/attune/storage"
)

// Recorder runs recordings from sources into the store. The daemon and
// `attuned record` share it, so tests and benchmarks exercise exactly the
// pipeline a home visit does.
type Recorder struct {
	Store   *storage.Store
	Clock   *Clock
	Log     *slog.Logger
	Audit   *Audit // nil: no audit chain
	Device  string // device id for the manifest (no personal data)
	Version string
	// Segment is the flush interval; MaxDuration the longest recording.
	Segment     time.Duration
	MaxDuration time.Duration
}

// Result describes a finished recording.
type Result struct {
	ID        string
	Segments  int
	Bytes     int64 // ciphertext
	Stats     capture.Stats
	EndReason string // "stopped", "max-duration", "end-of-source", "disk-full", "error"
}

// Started is called once the recording exists on disk; the daemon uses
// rec to add marks.
type Started func(rec *storage.Rec)

// Record makes one recording from srcs sealed to rcpt, until ctx is done or
// the recording ends by itself. The sources are closed when it returns.
// Running out of space is a clean end, not an error: every sealed segment
// is kept and the recording is marked complete.
func (r *Recorder) Record(ctx context.Context, srcs []capture.Source, rcpt storage.Recipients, spec SourceSpec, started Started) (Result, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tracks, err := capture.Tracks(srcs)
	if err != nil {
		closeSources(srcs)
		return Result{}, err
	}
	wall, trusted := r.Clock.Wall()
	m := storage.Manifest{
		Started:      wall.UTC(),
		ClockTrusted: trusted,
		Device:       r.Device,
		Source:       spec.Video,
		Audio:        spec.Audio,
	}
	for _, t := range tracks {
		m.Tracks = append(m.Tracks, storage.Track{
			Kind: t.Kind.String(), Codec: t.Codec,
			Width: t.Width, Height: t.Height, FPS: t.FPS,
			SampleRate: t.SampleRate, Channels: t.Channels,
		})
	}
	rec, err := r.Store.Create(rcpt, m)
	if err != nil {
		closeSources(srcs)
		return Result{}, err
	}
	id := rec.ID()
	log.Info("recording started", "recording", id, "clock_trusted", trusted)
	note(r.Audit, log, custody.Record{Event: custody.EventRecordingStarted, Recording: id, CaseRef: custody.CaseRef(rcpt.CaseRef)})
	if started != nil {
		started(rec)
	}
	st, recErr := capture.Record(ctx, srcs, rec, capture.RecordOptions{
		MaxDuration:     r.MaxDuration,
		ClusterDuration: r.Segment,
		WritingApp:      "attuned " + r.Version,
	})
	reason := st.Ended
	if errors.Is(recErr, storage.ErrFull) {
		reason, recErr = "disk-full", nil
		log.Warn("storage full: recording ended", "recording", id)
	}
	if recErr != nil {
		reason = "error"
	}
	closeErr := rec.Close(func(m *storage.Manifest) {
		end, _ := r.Clock.Wall()
		end = end.UTC()
		m.Ended = &end
		m.Duration = st.Duration.Seconds()
		m.EndReason = reason
		m.AudioOverruns = st.AudioOverruns
	})
	res := Result{ID: id, Segments: rec.Segments(), Bytes: rec.Bytes(), Stats: st, EndReason: reason}
	if ix, err := r.Store.Index(id); err == nil {
		note(r.Audit, log, custody.Record{Event: custody.EventRecordingSealed, Recording: id, Count: len(ix.Segments),
			Bytes: ix.Bytes(), SHA256: SegmentsDigest(ix), Detail: reason})
	}
	log.Info("recording sealed", "recording", id, "segments", res.Segments, "bytes", res.Bytes,
		"seconds", st.Duration.Seconds(), "frames", st.VideoFrames, "camera_dropped", st.VideoDropped, "audio_overruns", st.AudioOverruns, "reason", reason)
	if recErr != nil {
		return res, fmt.Errorf("recording %s: %w", id, recErr)
	}
	if closeErr != nil {
		return res, closeErr
	}
	return res, nil
}
