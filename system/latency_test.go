package system

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"filippo.io/age"

	"attune.dev/attune/capture"
	"attune.dev/attune/device"
	"attune.dev/attune/storage"
)

// BenchmarkRecToFirstSeal measures what the practitioner waits for after
// pressing REC: from the daemon receiving the REC event (the panel sends it
// when the button is released) to the recording's first segment sealed on
// disk (000000.age renamed into place), recording the test pattern and tone
// in real time with 1 s segments, as `make run` does. It reports the median
// as ms-to-first-seal; the store is in $TMPDIR.
func BenchmarkRecToFirstSeal(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	rcpt, err := storage.NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		b.Fatal(err)
	}
	store, err := storage.Open(b.TempDir(), storage.Options{MinFree: 1 << 20}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rec := &Recorder{Store: store, Clock: NewClock(), Segment: time.Second, MaxDuration: time.Hour}
	d := NewDaemon(rec, SourceSpec{Video: "testsrc", Audio: "testsrc", Pace: capture.Realtime}, nil)
	d.SetRecipients(rcpt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-d.Ready()
	wait := func(cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("timed out; status %+v", d.Status())
			}
		}
	}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		wait(func() bool { return d.Status().State == device.StateReady })
		t0 := time.Now()
		d.Send(device.EventRec)
		wait(func() bool { return d.Status().Recording != "" })
		first := filepath.Join(store.Dir(), d.Status().Recording, storage.SegmentName(0))
		wait(func() bool { _, err := os.Stat(first); return err == nil })
		lat = append(lat, time.Since(t0))
		d.Send(device.EventRec)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/float64(time.Millisecond), "ms-to-first-seal")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "ms-max")
}
