package ui

import (
	"testing"
	"time"

	"attune.dev/attune/device"
)

func TestIndicate(t *testing.T) {
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name string
		in   Input
		want Indication
	}{
		{"booting", Input{Status: device.Status{State: device.StateBooting}},
			Indication{State: "booting", LED: Amber, Blink: BlinkSlow, Text: "----"}},
		{"not paired", Input{Status: device.Status{State: device.StateNotPaired}},
			Indication{State: "not_paired", LED: Amber, Text: "PAIr"}},

		{"pairing first half", Input{Status: device.Status{State: device.StatePairing, Code: "123456"}, Now: now, Since: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "123-"}},
		{"pairing first half ends", Input{Status: device.Status{State: device.StatePairing, Code: "123456"}, Now: now.Add(PairHalf - 1), Since: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "123-"}},
		{"pairing second half", Input{Status: device.Status{State: device.StatePairing, Code: "123456"}, Now: now.Add(PairHalf), Since: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "-456"}},
		{"pairing first again", Input{Status: device.Status{State: device.StatePairing, Code: "123456"}, Now: now.Add(2 * PairHalf), Since: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "123-"}},
		{"pairing no since", Input{Status: device.Status{State: device.StatePairing, Code: "000999"}, Now: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "000-"}},
		{"pairing no code", Input{Status: device.Status{State: device.StatePairing}, Now: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "PAIr"}},
		{"pairing bad code", Input{Status: device.Status{State: device.StatePairing, Code: "12345x"}, Now: now},
			Indication{State: "pairing", LED: Blue, Blink: BlinkSlow, Text: "PAIr"}},

		{"ready", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 42}},
			Indication{State: "ready", LED: Green, Text: "  42"}},
		{"no case", Input{Status: device.Status{State: device.StateNoCase, MinutesLeft: 42}},
			Indication{State: "no_case", LED: Amber, Blink: BlinkSlow, Text: "noCA"}},
		{"ready case minutes", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 42, Case: "c042"}, Now: now.Add(CaseCycle - CaseShow - 1), Since: now},
			Indication{State: "ready", LED: Green, Text: "  42"}},
		{"ready case number", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 42, Case: "c042"}, Now: now.Add(CaseCycle - CaseShow), Since: now},
			Indication{State: "ready", LED: Green, Text: "c042"}},
		{"ready case minutes again", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 42, Case: "c042"}, Now: now.Add(CaseCycle), Since: now},
			Indication{State: "ready", LED: Green, Text: "  42"}},
		{"ready bad case", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 42, Case: "cXYZ"}, Now: now.Add(CaseCycle - 1), Since: now},
			Indication{State: "ready", LED: Green, Text: "  42"}},
		{"ready none", Input{Status: device.Status{State: device.StateReady}},
			Indication{State: "ready", LED: Green, Text: "   0"}},
		{"ready negative", Input{Status: device.Status{State: device.StateReady, MinutesLeft: -5}},
			Indication{State: "ready", LED: Green, Text: "   0"}},
		{"ready max", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 9999}},
			Indication{State: "ready", LED: Green, Text: "9999"}},
		{"ready over", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 123456}},
			Indication{State: "ready", LED: Green, Text: "9999"}},

		{"recording start", Input{Status: device.Status{State: device.StateRecording}, Now: now},
			Indication{State: "recording", LED: Red, Text: "00:00"}},
		{"recording 7s", Input{Status: device.Status{State: device.StateRecording, Elapsed: 7900 * ms}, Now: now},
			Indication{State: "recording", LED: Red, Text: "00:07"}},
		{"recording 61m", Input{Status: device.Status{State: device.StateRecording, Elapsed: 61*time.Minute + 5*time.Second}, Now: now},
			Indication{State: "recording", LED: Red, Text: "61:05"}},
		{"recording 99:59", Input{Status: device.Status{State: device.StateRecording, Elapsed: 99*time.Minute + 59*time.Second}, Now: now},
			Indication{State: "recording", LED: Red, Text: "99:59"}},
		{"recording 3h", Input{Status: device.Status{State: device.StateRecording, Elapsed: 3 * time.Hour}, Now: now},
			Indication{State: "recording", LED: Red, Text: "99:59"}},
		{"recording negative", Input{Status: device.Status{State: device.StateRecording, Elapsed: -time.Second}, Now: now},
			Indication{State: "recording", LED: Red, Text: "00:00"}},
		{"mark", Input{Status: device.Status{State: device.StateRecording, Marks: 1}, Now: now, MarkedAt: now},
			Indication{State: "mark", LED: Red, Blink: BlinkFast, Text: "nArK"}},
		{"mark ending", Input{Status: device.Status{State: device.StateRecording, Marks: 1}, Now: now.Add(MarkFlash - 1), MarkedAt: now},
			Indication{State: "mark", LED: Red, Blink: BlinkFast, Text: "nArK"}},
		{"mark over", Input{Status: device.Status{State: device.StateRecording, Marks: 1, Elapsed: 5 * time.Second}, Now: now.Add(MarkFlash), MarkedAt: now},
			Indication{State: "recording", LED: Red, Text: "00:05"}},
		{"mark only while recording", Input{Status: device.Status{State: device.StateReady, MinutesLeft: 7}, Now: now, MarkedAt: now},
			Indication{State: "ready", LED: Green, Text: "   7"}},

		{"syncing", Input{Status: device.Status{State: device.StateSyncing, SyncPercent: 42}},
			Indication{State: "syncing", LED: Blue, Text: "  42"}},
		{"syncing done", Input{Status: device.Status{State: device.StateSyncing, SyncPercent: 100}},
			Indication{State: "syncing", LED: Blue, Text: " 100"}},
		{"syncing over", Input{Status: device.Status{State: device.StateSyncing, SyncPercent: 250}},
			Indication{State: "syncing", LED: Blue, Text: " 100"}},
		{"syncing start", Input{Status: device.Status{State: device.StateSyncing}},
			Indication{State: "syncing", LED: Blue, Text: "   0"}},

		{"full", Input{Status: device.Status{State: device.StateFull}},
			Indication{State: "storage_full", LED: Red, Alt: Amber, Blink: BlinkSlow, Text: "FULL"}},

		{"fault cam", Input{Status: device.Status{State: device.StateFault, Fault: "cam"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err1"}},
		{"fault disk", Input{Status: device.Status{State: device.StateFault, Fault: "disk"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err2"}},
		{"fault rec", Input{Status: device.Status{State: device.StateFault, Fault: "rec"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err3"}},
		{"fault other", Input{Status: device.Status{State: device.StateFault, Fault: "mic"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err9"}},
		{"fault none", Input{Status: device.Status{State: device.StateFault}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err9"}},

		{"resetting", Input{Status: device.Status{State: device.StateResetting}},
			Indication{State: "resetting", LED: White, Blink: BlinkFast, Text: "rSt "}},
		{"confirm reset", Input{Status: device.Status{State: device.StateConfirmReset}},
			Indication{State: "confirm_reset", LED: White, Blink: BlinkSlow, Text: "rSt?"}},
		{"confirm loss", Input{Status: device.Status{State: device.StateConfirmLoss}},
			Indication{State: "confirm_loss", LED: White, Blink: BlinkFast, Text: "LoSE"}},
		{"pairing refused", Input{Status: device.Status{State: device.StatePairRefused}},
			Indication{State: "pair_refused", LED: Amber, Blink: BlinkFast, Text: "SynC"}},

		{"unknown state", Input{Status: device.Status{State: "updating"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err9"}},
		{"empty state", Input{},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err9"}},
		{"unknown state with fault", Input{Status: device.Status{State: "updating", Fault: "disk"}},
			Indication{State: "fault", LED: Red, Blink: BlinkFast, Text: "Err2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Indicate(tc.in)
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if _, _, err := Segments(got.Text); err != nil {
				t.Fatal(err)
			}
			if got.LED == Off || got.LED == "" {
				t.Fatal("the LED is never off while running: off means dead")
			}
		})
	}
}

// TestIndicateAlwaysDisplayable: whatever the status, the text renders.
func TestIndicateAlwaysDisplayable(t *testing.T) {
	states := []device.State{device.StateBooting, device.StateNotPaired, device.StatePairing, device.StateReady,
		device.StateRecording, device.StateSyncing, device.StateFull, device.StateFault, device.StateResetting, device.StateConfirmReset, device.StateConfirmLoss, device.StatePairRefused, "", "x"}
	codes := []string{"", "123456", "12345", "1234567", "abcdef", "12 456", "١٢٣٤٥٦"}
	nums := []int{-1 << 62, -1, 0, 1, 99, 100, 101, 9999, 10000, 1 << 62}
	durs := []time.Duration{-time.Hour, 0, time.Second, time.Hour, 1 << 62}
	for _, st := range states {
		for _, code := range codes {
			for _, n := range nums {
				for _, d := range durs {
					in := Input{
						Status: device.Status{State: st, MinutesLeft: n, Elapsed: d, Marks: n, Fault: code, Code: code, SyncPercent: n},
						Now:    t0.Add(d), Since: t0, MarkedAt: t0,
					}
					ind := Indicate(in)
					if _, _, err := Segments(ind.Text); err != nil {
						t.Fatalf("%+v: %v", in, err)
					}
				}
			}
		}
	}
}

func TestTracker(t *testing.T) {
	var tr Tracker
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	rec := func(id string, marks int) device.Status {
		return device.Status{State: device.StateRecording, Recording: id, Marks: marks}
	}
	in := tr.Input(device.Status{State: device.StateReady}, at(0))
	if !in.Since.Equal(at(0)) || !in.MarkedAt.IsZero() {
		t.Fatalf("first: %+v", in)
	}
	in = tr.Input(rec("r1", 0), at(time.Second))
	if !in.Since.Equal(at(time.Second)) || !in.MarkedAt.IsZero() {
		t.Fatalf("recording: %+v", in)
	}
	in = tr.Input(rec("r1", 0), at(2*time.Second))
	if !in.Since.Equal(at(time.Second)) {
		t.Fatalf("same state moved Since: %+v", in)
	}
	in = tr.Input(rec("r1", 1), at(3*time.Second))
	if !in.MarkedAt.Equal(at(3*time.Second)) || Indicate(in).Text != "nArK" {
		t.Fatalf("mark: %+v", in)
	}
	if ind := Indicate(tr.Input(rec("r1", 1), at(3*time.Second+MarkFlash))); ind.State != "recording" {
		t.Fatalf("flash did not end: %+v", ind)
	}
	// A recording already holding marks when first seen does not flash.
	in = tr.Input(rec("r2", 5), at(10*time.Second))
	if !in.MarkedAt.IsZero() {
		t.Fatalf("new recording flashed: %+v", in)
	}
	in = tr.Input(rec("r2", 6), at(11*time.Second))
	if !in.MarkedAt.Equal(at(11 * time.Second)) {
		t.Fatalf("second recording's mark: %+v", in)
	}
	// Pairing halves count from when pairing began.
	pairing := device.Status{State: device.StatePairing, Code: "314159"}
	tr.Input(pairing, at(20*time.Second))
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{20 * time.Second, "314-"}, {21 * time.Second, "314-"}, {21500 * ms, "-159"}, {23 * time.Second, "314-"}} {
		if got := Indicate(tr.Input(pairing, at(tc.d))).Text; got != tc.want {
			t.Errorf("at %v: %q, want %q", tc.d, got, tc.want)
		}
	}
}
