package system

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jonboulle/clockwork"

	"attune.dev/attune/capture"
	"attune.dev/attune/device"
	"attune.dev/attune/storage"
	"attune.dev/attune/v4l2"
	"attune.dev/attune/v4l2/v4l2test"
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
	return newTestDaemonWith(t, nil)
}

// newTestDaemonWith is newTestDaemon with setup applied before Run.
func newTestDaemonWith(t *testing.T, setup func(*Daemon)) *testDaemon {
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
	if setup != nil {
		setup(d)
	}
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

// TestDaemonCameraUnplugged unplugs the fake camera mid-recording: what was
// recorded is sealed (reason error), the fault shows until a short press
// acknowledges it — even once the camera is back — REC is refused with the
// camera fault while there is no camera, and a recording starts again once
// it is back and the fault is acknowledged.
func TestDaemonCameraUnplugged(t *testing.T) {
	var (
		mu      sync.Mutex
		cam     *v4l2test.Camera
		present = true
		opened  int
	)
	var frame bytes.Buffer
	if err := jpeg.Encode(&frame, image.NewGray(image.Rect(0, 0, 32, 32)), nil); err != nil {
		t.Fatal(err)
	}
	td := newTestDaemonWith(t, func(d *Daemon) {
		d.Spec = SourceSpec{Video: "v4l2:/dev/video-test", Audio: "none"}
		d.CameraPresent = func() bool { mu.Lock(); defer mu.Unlock(); return present }
		d.Open = func(SourceSpec, *slog.Logger) ([]capture.Source, error) {
			mu.Lock()
			defer mu.Unlock()
			if !present {
				return nil, errors.New("open /dev/video-test: no such file or directory")
			}
			opened++
			cam = v4l2test.NewCamera()
			cam.Generate = func(int) []byte { time.Sleep(20 * time.Millisecond); return frame.Bytes() }
			src, err := v4l2.NewSource(cam, v4l2.Options{Clock: capture.Now})
			if err != nil {
				return nil, err
			}
			return []capture.Source{src}, nil
		}
	})
	unplug := func() {
		mu.Lock()
		present = false
		c := cam
		mu.Unlock()
		c.Unplug()
	}
	count := func() int { l, _ := td.store.List(); return len(l) }
	wantFault := func(when string) {
		t.Helper()
		if st := td.waitState(t, device.StateFault); st.Fault != "cam" {
			t.Fatalf("%s: fault %q, want cam", when, st.Fault)
		}
	}
	// Ticks of the resting state's refresh never clear a fault by themselves.
	refresh := func() {
		td.clock.Advance(11 * time.Second)
		time.Sleep(50 * time.Millisecond)
	}

	td.d.Send(device.EventRec)
	st := td.waitState(t, device.StateRecording)
	time.Sleep(500 * time.Millisecond) // real time: frames are recorded
	unplug()
	wantFault("camera unplugged mid-recording")
	after := td.d.Status()
	if after.LastID != st.Recording || after.LastReason != "error" {
		t.Errorf("after the unplug: last %s (%s), want %s (error)", after.LastID, after.LastReason, st.Recording)
	}
	ix, err := td.store.Index(st.Recording)
	if err != nil || ix.State != storage.Complete || len(ix.Segments) < 1 {
		t.Fatalf("unplugged recording: index %+v, %v", ix, err)
	}
	if m := td.manifest(t, st.Recording); m.EndReason != "error" || m.Duration <= 0 {
		t.Errorf("manifest: end %q after %.2fs", m.EndReason, m.Duration)
	}
	refresh()
	wantFault("after a refresh")
	setPresent := func(p bool) {
		mu.Lock()
		present = p
		mu.Unlock()
		refresh()
	}

	// The camera is back: the fault still shows until acknowledged, and REC
	// only acknowledges it (a press meant to stop the recording that had
	// already ended must not start one).
	setPresent(true)
	wantFault("camera back, fault not acknowledged")
	td.d.Send(device.EventRec)
	td.waitState(t, device.StateReady)
	time.Sleep(50 * time.Millisecond)
	if n := count(); n != 1 || td.d.Status().State != device.StateReady {
		t.Fatalf("REC acknowledging the fault: %d recordings, state %s; want 1, ready", n, td.d.Status().State)
	}

	// No camera: the resting state says so, and REC is refused with the
	// camera fault, which waits for acknowledgement.
	setPresent(false)
	wantFault("no camera at rest")
	td.d.Send(device.EventRec)
	time.Sleep(50 * time.Millisecond)
	wantFault("REC without a camera")
	if n := count(); n != 1 {
		t.Fatalf("%d recordings after REC without a camera, want 1", n)
	}
	setPresent(true)
	wantFault("camera back, refusal not acknowledged")
	td.d.Send(device.EventMark)
	td.waitState(t, device.StateReady)
	td.d.Send(device.EventRec)
	st2 := td.waitState(t, device.StateRecording)
	time.Sleep(300 * time.Millisecond)
	td.d.Send(device.EventRec)
	if after := td.waitState(t, device.StateReady); after.LastID != st2.Recording || after.LastReason != "stopped" {
		t.Errorf("second recording: %+v", after)
	}
	if n := count(); n != 2 || opened != 2 {
		t.Errorf("%d recordings from %d opens, want 2 and 2", n, opened)
	}
}

// TestDaemonCameraMissingAtRest: with no camera the resting state is the
// camera fault (no acknowledgement needed: it clears when the camera
// comes).
func TestDaemonCameraMissingAtRest(t *testing.T) {
	var present atomic.Bool
	td := newTestDaemonWith(t, func(d *Daemon) { d.CameraPresent = present.Load })
	if st := td.waitState(t, device.StateFault); st.Fault != "cam" {
		t.Fatalf("fault %q, want cam", st.Fault)
	}
	present.Store(true)
	td.clock.Advance(11 * time.Second)
	td.waitState(t, device.StateReady)
}
