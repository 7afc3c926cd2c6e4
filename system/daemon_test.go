package system

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jonboulle/clockwork"

	"attune.dev/attune/capture"
	"attune.dev/attune/device"
	"attune.dev/attune/storage"
)

type testDaemon struct {
	d      *Daemon
	clock  *clockwork.FakeClock
	store  *storage.Store
	id     *age.X25519Identity
	cancel context.CancelFunc
	done   chan error
}

// newTestDaemon runs a daemon recording the test sources in real time;
// its own timing (windows, elapsed time, marks, heartbeat) is on a fake
// clock the test advances.
func newTestDaemon(t *testing.T) *testDaemon {
	t.Helper()
	clock := clockwork.NewFakeClock()
	id, _ := age.GenerateX25519Identity()
	rcpt, err := storage.NewRecipients([]age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(t.TempDir(), storage.Options{MinFree: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{Store: store, Clock: NewClock(), Segment: 200 * time.Millisecond, MaxDuration: time.Minute}
	d := NewDaemon(rec, SourceSpec{Video: "testsrc", Audio: "testsrc", Pace: capture.Realtime}, nil)
	d.SetRecipients(rcpt)
	d.Clock = clock
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{d: d, clock: clock, store: store, id: id, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	<-d.Ready()
	t.Cleanup(func() { td.stop(t) })
	return td
}

func (td *testDaemon) stop(t *testing.T) {
	t.Helper()
	td.cancel()
	select {
	case err := <-td.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		td.done <- nil // idempotent
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func (td *testDaemon) waitState(t *testing.T, want device.State) device.Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := td.d.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s, want %s", st.State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (td *testDaemon) manifest(t *testing.T, id string) storage.Manifest {
	t.Helper()
	f, err := os.Open(filepath.Join(td.store.Dir(), id, "manifest.age"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := age.Decrypt(f, td.id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	var m storage.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDaemonRecordMarkStop(t *testing.T) {
	td := newTestDaemon(t)
	if st := td.d.Status(); st.State != device.StateReady || st.MinutesLeft <= 0 {
		t.Fatalf("at start: %+v", st)
	}
	td.d.Send(device.EventRec)
	st := td.waitState(t, device.StateRecording)
	time.Sleep(300 * time.Millisecond) // real time: the sources make 300 ms of media
	td.clock.Advance(300 * time.Millisecond)
	td.d.Send(device.EventMark)
	deadline := time.Now().Add(2 * time.Second)
	for td.d.Status().Marks != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e := td.d.Status().Elapsed; e < 300*time.Millisecond {
		t.Errorf("elapsed %v after 300ms", e)
	}
	time.Sleep(300 * time.Millisecond)
	td.clock.Advance(300 * time.Millisecond)
	td.d.Send(device.EventRec)
	after := td.waitState(t, device.StateReady)
	if after.LastID != st.Recording || after.LastReason != "stopped" {
		t.Errorf("after stop: %+v", after)
	}
	ix, err := td.store.Index(st.Recording)
	if err != nil || ix.State != storage.Complete || len(ix.Segments) < 2 {
		t.Fatalf("index %+v, %v", ix, err)
	}
	m := td.manifest(t, st.Recording)
	if len(m.Marks) != 1 || m.Marks[0].Offset < 0.25 || m.Marks[0].Offset > 0.6 || m.EndReason != "stopped" {
		t.Errorf("manifest marks %+v, end %q", m.Marks, m.EndReason)
	}
}

// TestDaemonMashing presses REC and MARK at random for a while: the daemon
// never wedges, every recording ends complete, and cancelling seals the
// open one.
func TestDaemonMashing(t *testing.T) {
	td := newTestDaemon(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		if rng.IntN(3) == 0 {
			td.d.Send(device.EventRec)
		} else {
			td.d.Send(device.EventMark)
		}
		time.Sleep(time.Duration(rng.IntN(8)) * time.Millisecond)
	}
	td.d.Send(device.EventRec)
	time.Sleep(100 * time.Millisecond)
	td.stop(t) // seals whatever is open
	list, err := td.store.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("no recordings after mashing: %v", err)
	}
	for _, ix := range list {
		if ix.State != storage.Complete {
			t.Errorf("recording %s left %s", ix.ID, ix.State)
		}
	}
	t.Logf("%d recordings from 300 random presses", len(list))
}

func TestDaemonRefusesWithoutRecipients(t *testing.T) {
	store, _ := storage.Open(t.TempDir(), storage.Options{MinFree: 1 << 20}, nil)
	rec := &Recorder{Store: store, Clock: NewClock(), Segment: time.Second, MaxDuration: time.Minute}
	d := NewDaemon(rec, SourceSpec{Video: "testsrc", Audio: "none"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	if st := d.Status(); st.State != device.StateNotPaired {
		t.Errorf("state %s, want not_paired", st.State)
	}
	d.Send(device.EventRec)
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	if list, _ := store.List(); len(list) != 0 {
		t.Errorf("recorded without recipients")
	}
}

func TestDaemonPairingWindow(t *testing.T) {
	td := newTestDaemon(t)
	clock := td.clock
	codes := map[string]bool{}
	for i := 0; i < 20; i++ {
		td.d.Send(device.EventPair)
		st := td.waitState(t, device.StatePairing)
		if len(st.Code) != 6 || strings.Trim(st.Code, "0123456789") != "" {
			t.Fatalf("code %q", st.Code)
		}
		if codes[st.Code] {
			t.Fatalf("code %s shown twice", st.Code)
		}
		codes[st.Code] = true
		if i%2 == 0 {
			// The window closes by itself after two minutes.
			clock.Advance(PairWindow - time.Second)
			time.Sleep(20 * time.Millisecond)
			if td.d.Status().State != device.StatePairing {
				t.Fatal("window closed early")
			}
			clock.Advance(time.Second)
		} else {
			td.d.Send(device.EventOther) // any other press cancels
		}
		if st := td.waitState(t, device.StateReady); st.Code != "" {
			t.Fatalf("code still shown after the window: %+v", st)
		}
	}
}

func TestDaemonResetConfirmation(t *testing.T) {
	td := newTestDaemon(t)
	clock := td.clock
	// One recording to erase.
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateRecording)
	time.Sleep(300 * time.Millisecond)
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateReady)
	count := func() int { l, _ := td.store.List(); return len(l) }

	// Cancel by another button.
	td.d.Send(device.EventReset)
	td.waitState(t, device.StateConfirmReset)
	td.d.Send(device.EventMark)
	td.waitState(t, device.StateReady)
	// Cancel by silence.
	td.d.Send(device.EventReset)
	td.waitState(t, device.StateConfirmReset)
	clock.Advance(ConfirmWindow)
	td.waitState(t, device.StateReady)
	if count() != 1 {
		t.Fatal("a cancelled reset erased recordings")
	}
	// REC within the window confirms; the recording was never synced, so
	// the device asks once more (LoSE), and a second REC erases it.
	td.d.Send(device.EventReset)
	td.waitState(t, device.StateConfirmReset)
	clock.Advance(ConfirmWindow - time.Second)
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateConfirmLoss)
	clock.Advance(ConfirmWindow - time.Second)
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateNotPaired)
	if count() != 0 {
		t.Fatal("confirmed reset left recordings")
	}
	// After the reset nothing can be recorded until paired again.
	td.d.Send(device.EventRec)
	time.Sleep(50 * time.Millisecond)
	if count() != 0 || td.d.Status().State != device.StateNotPaired {
		t.Fatal("recorded after reset without recipients")
	}
}

func TestDaemonAlive(t *testing.T) {
	td := newTestDaemon(t)
	if !td.d.Alive() {
		t.Fatal("running state machine not alive")
	}
	td.stop(t)
	td.clock.Advance(25 * time.Second)
	if td.d.Alive() {
		t.Fatal("a stalled state machine is reported alive")
	}
}

// recordOne makes one short recording, left unsynced on the device.
func (td *testDaemon) recordOne(t *testing.T) string {
	t.Helper()
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateRecording)
	time.Sleep(300 * time.Millisecond)
	td.d.Send(device.EventRec)
	return td.waitState(t, device.StateReady).LastID
}

// TestDaemonPairRefusedWithUnsynced: holding PAIR while unsynced footage is
// on the device opens no pairing window (a second laptop would lock the
// paired one out of it); the display says SynC for a moment. Once the
// footage is acknowledged PAIR works again.
func TestDaemonPairRefusedWithUnsynced(t *testing.T) {
	td := newTestDaemon(t)
	id := td.recordOne(t)
	td.d.Send(device.EventPair)
	st := td.waitState(t, device.StatePairRefused)
	if st.Code != "" {
		t.Fatalf("a pairing code is shown while pairing is refused: %q", st.Code)
	}
	td.clock.Advance(NoticeTime)
	td.waitState(t, device.StateReady)
	// A press dismisses the notice at once and does nothing else.
	td.d.Send(device.EventPair)
	td.waitState(t, device.StatePairRefused)
	td.d.Send(device.EventOther)
	td.waitState(t, device.StateReady)

	ix, err := td.store.Index(id)
	if err != nil {
		t.Fatal(err)
	}
	all := make([]int, len(ix.Segments))
	for i := range all {
		all[i] = i
	}
	if _, err := td.store.Ack(id, all, true); err != nil {
		t.Fatal(err)
	}
	td.d.Send(device.EventPair)
	if st := td.waitState(t, device.StatePairing); len(st.Code) != 6 {
		t.Fatalf("no pairing code once everything was synced: %+v", st)
	}
}

// TestDaemonResetLossNeedsSecondConfirm: with unsynced footage a confirmed
// reset asks once more (LoSE); anything but REC, or silence, keeps the
// footage.
func TestDaemonResetLossNeedsSecondConfirm(t *testing.T) {
	td := newTestDaemon(t)
	td.recordOne(t)
	count := func() int { l, _ := td.store.List(); return len(l) }
	for _, cancel := range []func(){
		func() { td.d.Send(device.EventMark) },
		func() { td.d.Send(device.EventOther) },
		func() { td.clock.Advance(ConfirmWindow) },
	} {
		td.d.Send(device.EventReset)
		td.waitState(t, device.StateConfirmReset)
		td.d.Send(device.EventRec)
		td.waitState(t, device.StateConfirmLoss)
		cancel()
		td.waitState(t, device.StateReady)
		if count() != 1 {
			t.Fatal("unsynced footage erased without the second confirmation")
		}
	}
	td.d.Send(device.EventReset)
	td.waitState(t, device.StateConfirmReset)
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateConfirmLoss)
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateNotPaired)
	if count() != 0 {
		t.Fatal("reset confirmed twice left recordings")
	}
}
