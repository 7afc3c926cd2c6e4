package system

import (
	"context"
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
)

// overrunning is an audio source that says it overran (as alsa.Source
// counts its overruns).
type overrunning struct {
	capture.Source
	n int
}

func (o overrunning) Overruns() int { return o.n }

// dropping is a camera whose driver dropped frames (as v4l2.Source counts
// them from its sequence numbers).
type dropping struct {
	capture.Source
	n int
}

func (d dropping) DriverDropped() int { return d.n }

// The microphone's overruns reach the recording's stats and its manifest;
// the frames the camera's driver dropped reach the stats (and the log).
func TestRecorderCountsOverruns(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	rcpt, err := storage.NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.TempDir(), storage.Options{MinFree: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{Store: store, Clock: NewClock(), Segment: 200 * time.Millisecond, MaxDuration: 500 * time.Millisecond}
	srcs := []capture.Source{dropping{capture.NewPatternSource(capture.Fast), 3}, overrunning{capture.NewToneSource(capture.Fast), 2}}
	res, err := rec.Record(context.Background(), srcs, rcpt, SourceSpec{Video: "testsrc", Audio: "testsrc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.AudioOverruns != 2 || res.Stats.VideoDropped != 3 {
		t.Errorf("stats: %d overruns and %d frames dropped by the camera, want 2 and 3", res.Stats.AudioOverruns, res.Stats.VideoDropped)
	}
	m := (&testDaemon{store: store, id: id}).manifest(t, res.ID)
	if m.AudioOverruns != 2 {
		t.Errorf("manifest: %d overruns, want 2", m.AudioOverruns)
	}
}
