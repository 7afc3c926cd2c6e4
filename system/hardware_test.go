package system

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/board"
	"attune.dev/attune/board/hw/hwtest"
)

// A board opened without its battery gauge runs: one warning is logged and
// the daemon gets no battery to watch.
func TestFrontPanelWarnsOnceWithoutBattery(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b := &board.Board{Name: "pi-ref", LED: &hwtest.LED{},
		Warnings: []error{errors.New("open board pi-ref: battery ina219: I2C bus 1: /dev/i2c-1 does not exist")}}
	h := frontPanel("pi-ref", b, nil, clockwork.NewFakeClock(), log)
	if h.Battery != nil {
		t.Error("hardware has a battery")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "/dev/i2c-1 does not exist") {
		t.Errorf("log = %q, want one warning naming /dev/i2c-1", logs.String())
	}
}

// A gauge that fails while running is warned about once, not at every
// reading, and its last figure is dropped rather than shown stale.
func TestWatchBatteryFailingGauge(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	clock := clockwork.NewFakeClock()
	bat := hwtest.NewBattery(50)
	d := NewDaemon(nil, SourceSpec{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- watchBattery(ctx, clock, bat, time.Second, d, log) }()
	waitReads := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for bat.Reads() < n {
			if time.Now().After(deadline) {
				t.Fatalf("battery read %d times, want %d", bat.Reads(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitReads(1)
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	bat.SetErr(errors.New("read battery (ina219 0x40 on I2C1): i2c: no ack"))
	for n := 2; n <= 4; n++ {
		clock.Advance(time.Second)
		waitReads(n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := d.Status().Battery; got != -1 {
		t.Errorf("battery = %d after the gauge failed, want -1 (no figure)", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
	}
}
