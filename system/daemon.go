package system

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/capture"
	"attune.dev/attune/custody"
	"attune.dev/attune/device"
	"attune.dev/attune/mkv"
	"attune.dev/attune/storage"
)

// Windows of the front-panel flows.
const (
	PairWindow    = 2 * time.Minute
	ConfirmWindow = 10 * time.Second
	// NoticeTime is how long a refusal (pairing with unsynced footage)
	// stays on the display.
	NoticeTime = 3 * time.Second
)

// Daemon is the state machine. Events come in through Send; Run owns the
// recording goroutine and seals any open recording before it returns.
type Daemon struct {
	Rec  *Recorder
	Spec SourceSpec
	Log  *slog.Logger
	// Clock is the daemon's only clock: the heartbeat, a recording's
	// elapsed time and marks, the pairing and confirmation windows, the
	// resting state's refresh. Set it before Run.
	Clock clockwork.Clock
	// Open opens the sources; nil means OpenSources.
	Open func(SourceSpec, *slog.Logger) ([]capture.Source, error)
	// Reset performs a confirmed factory reset; nil means erase every
	// recording and forget the recipients.
	Reset func(context.Context) error
	// CameraPresent reports whether the camera is there; nil means a
	// v4l2:PATH source's device node exists (other sources always are).
	// While it is not, the resting state is fault "cam".
	CameraPresent func() bool

	events    chan device.Event
	ready     chan struct{}
	heartbeat atomic.Pointer[time.Time] // the state machine's last turn

	mu        sync.Mutex
	status    device.Status
	rcpt      storage.Recipients
	paired    bool
	noCase    bool      // paired, but the laptop closed the case
	started   time.Time // start of the open recording
	rec       *storage.Rec
	bitrate   float64 // ciphertext bytes per second, measured
	usedCodes map[string]bool
	listeners []chan struct{}
	// unacked is a fault the practitioner has not yet acknowledged (a
	// recording that ended in an error, REC refused without a camera): the
	// resting state shows it until a short press clears it.
	unacked string
}

// NewDaemon returns a daemon in the booting state.
func NewDaemon(r *Recorder, spec SourceSpec, log *slog.Logger) *Daemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{
		Rec: r, Spec: spec, Log: log, Clock: clockwork.NewRealClock(),
		events:    make(chan device.Event, 16),
		ready:     make(chan struct{}),
		status:    device.Status{State: device.StateBooting, Battery: -1},
		bitrate:   2 << 20, // 720p30 MJPEG is about 1–3 MB/s until measured
		usedCodes: map[string]bool{},
	}
}

// SetRecipients gives the daemon the recipients new recordings are sealed
// to (from a file, or from pairing).
func (d *Daemon) SetRecipients(r storage.Recipients) {
	d.mu.Lock()
	d.rcpt, d.paired, d.noCase = r, len(r.List) > 0, false
	d.mu.Unlock()
	d.Send(device.EventRefresh)
}

// SetNoCase forgets the recipients because the paired laptop closed the
// case: the device shows "no case" and refuses REC until SetRecipients.
func (d *Daemon) SetNoCase() {
	d.mu.Lock()
	d.rcpt, d.paired, d.noCase = storage.Recipients{}, false, true
	d.mu.Unlock()
	d.Send(device.EventRefresh)
}

// Recipients returns the current recipients and whether there are any.
func (d *Daemon) Recipients() (storage.Recipients, bool) { return d.recipients() }

func (d *Daemon) recipients() (storage.Recipients, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rcpt, d.paired
}

// Send queues an event; it never blocks (a toddler can press faster than
// anything matters: surplus presses are dropped).
func (d *Daemon) Send(ev device.Event) bool {
	select {
	case d.events <- ev:
		return true
	default:
		return false
	}
}

// Status returns the current status.
func (d *Daemon) Status() device.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	if s.State == device.StateRecording {
		s.Elapsed = d.Clock.Since(d.started)
	}
	return s
}

// Alive reports whether the state machine has turned within the last 25 s
// (it turns at least every 10 s): what the systemd watchdog checks.
func (d *Daemon) Alive() bool {
	last := d.heartbeat.Load()
	return last != nil && d.Clock.Since(*last) < 25*time.Second
}

// Ready is closed once the daemon has left the booting state.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Changed returns a channel that receives after every status change.
func (d *Daemon) Changed() <-chan struct{} {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.listeners = append(d.listeners, ch)
	d.mu.Unlock()
	return ch
}

func (d *Daemon) update(f func(*device.Status)) {
	d.mu.Lock()
	f(&d.status)
	ls := d.listeners
	d.mu.Unlock()
	for _, ch := range ls {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// SetBattery records a battery reading for the indicators.
func (d *Daemon) SetBattery(percent int) {
	d.update(func(s *device.Status) { s.Battery = percent })
}

// idleState computes the resting state: a fault (the disk, one not yet
// acknowledged, no camera), not paired, full or ready.
func (d *Daemon) idleState() {
	free, err := d.Rec.Store.Free()
	camera := d.cameraPresent()
	d.mu.Lock()
	paired, noCase, ref, unacked := d.paired, d.noCase, d.rcpt.CaseRef, d.unacked
	d.mu.Unlock()
	d.update(func(s *device.Status) {
		s.Code, s.Fault = "", ""
		s.Case = custody.CaseNumber(ref)
		switch {
		case err != nil:
			s.State, s.Fault = device.StateFault, "disk"
		case unacked != "":
			s.State, s.Fault = device.StateFault, unacked
		case !paired && noCase:
			s.State = device.StateNoCase
		case !paired:
			s.State = device.StateNotPaired
		case !camera:
			s.State, s.Fault = device.StateFault, "cam"
		case free == 0:
			s.State = device.StateFull
		default:
			s.State = device.StateReady
		}
		s.MinutesLeft = int(float64(free) / d.bitrate / 60)
	})
}

type recDone struct {
	res Result
	err error
}

func (d *Daemon) cameraPresent() bool {
	if d.CameraPresent != nil {
		return d.CameraPresent()
	}
	path, ok := strings.CutPrefix(d.Spec.Video, "v4l2:")
	if !ok {
		return true
	}
	_, err := os.Stat(path)
	return err == nil
}

// raise shows fault until it is acknowledged.
func (d *Daemon) raise(fault string) {
	d.mu.Lock()
	d.unacked = fault
	d.mu.Unlock()
	d.idleState()
}

// acknowledge clears a fault not yet acknowledged, and reports whether
// there was one.
func (d *Daemon) acknowledge() bool {
	d.mu.Lock()
	fault := d.unacked
	d.unacked = ""
	d.mu.Unlock()
	if fault == "" {
		return false
	}
	d.Log.Info("fault acknowledged", "fault", fault)
	d.idleState()
	return true
}

// timerC is a timer's channel, or nil (blocks forever) without one.
func timerC(t clockwork.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.Chan()
}

// Run runs the state machine until ctx is done. An open recording is
// stopped and sealed before Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	open := d.Open
	if open == nil {
		open = OpenSources
	}
	d.idleState()
	// The first heartbeat before ready: a watchdog check right after
	// Ready must not find the machine dead.
	first := d.Clock.Now()
	d.heartbeat.Store(&first)
	close(d.ready)
	var (
		stop    context.CancelFunc
		done    chan recDone
		window  clockwork.Timer // pairing or reset confirmation
		refresh = d.Clock.NewTicker(10 * time.Second)
	)
	defer refresh.Stop()
	closeWindow := func() {
		if window != nil {
			window.Stop()
			window = nil
		}
	}
	defer closeWindow()
	for {
		now := d.Clock.Now()
		d.heartbeat.Store(&now)
		select {
		case <-ctx.Done():
			if stop != nil {
				stop()
				d.finished(<-done)
			}
			return nil
		case <-refresh.Chan():
			if stop == nil && window == nil {
				d.idleState()
			}
		case r := <-done:
			stop, done = nil, nil
			d.finished(r)
		case <-timerC(window):
			window = nil
			st := d.Status().State
			d.Log.Info("window closed", "state", string(st))
			d.idleState()
		case ev := <-d.events:
			if ev == device.EventRefresh {
				if stop == nil && window == nil {
					d.idleState()
				}
				continue
			}
			st := d.Status().State
			if st == device.StatePairRefused {
				// Any press dismisses the notice, then counts as usual.
				closeWindow()
				d.idleState()
				st = d.Status().State
			}
			switch {
			case stop != nil: // recording: REC stops, MARK marks, others ignored
				switch ev {
				case device.EventRec, device.EventStop:
					stop() // finished() runs when the recorder returns
				case device.EventMark:
					d.mark()
				}
			case ev == device.EventStop, ev == device.EventPairingDone && st != device.StatePairing:
				// Nothing to stop or close.
			case st == device.StateConfirmReset, st == device.StateConfirmLoss:
				closeWindow()
				if ev != device.EventRec {
					d.Log.Info("factory reset cancelled")
					d.idleState()
					continue
				}
				if st == device.StateConfirmReset {
					if n := d.unsynced(); n != 0 {
						// Footage would be lost: REC once more, knowingly.
						window = d.Clock.NewTimer(ConfirmWindow)
						d.Log.Warn("factory reset would erase unsynced footage: waiting for REC again to confirm", "recordings", n)
						d.update(func(s *device.Status) { s.State = device.StateConfirmLoss })
						continue
					}
				}
				d.reset(ctx)
				d.idleState()
			case st == device.StatePairing:
				if ev == device.EventPair {
					continue // still held: keep the window
				}
				closeWindow()
				d.Log.Info("pairing cancelled")
				d.idleState()
			case (ev == device.EventRec || ev == device.EventMark || ev == device.EventOther) && d.acknowledge():
				// A short press acknowledges a fault and does nothing else:
				// a REC meant to stop a recording that already ended must
				// not start a new one.
			case ev == device.EventRec:
				stop, done = d.start(ctx, open)
			case ev == device.EventPair:
				if n := d.unsynced(); n != 0 {
					// A new pairing would lock the paired laptop out of
					// footage that exists nowhere else.
					window = d.Clock.NewTimer(NoticeTime)
					d.Log.Warn("pairing refused: unsynced footage on the device; sync it first", "recordings", n)
					d.update(func(s *device.Status) { s.State, s.Code = device.StatePairRefused, "" })
					continue
				}
				window = d.Clock.NewTimer(PairWindow)
				d.openPairing()
			case ev == device.EventReset:
				window = d.Clock.NewTimer(ConfirmWindow)
				d.Log.Info("factory reset requested: waiting for REC to confirm")
				d.update(func(s *device.Status) { s.State = device.StateConfirmReset })
			}
		}
	}
}

// unsynced is how many recordings on the device were not fully
// acknowledged; -1 if the store cannot tell (then nothing counts as safe
// to lose).
func (d *Daemon) unsynced() int {
	un, err := d.Rec.Store.Unsynced()
	if err != nil {
		d.Log.Error("cannot tell whether footage is unsynced", "err", err)
		return -1
	}
	return len(un)
}

// openPairing shows a fresh 6-digit code, never one used before.
func (d *Daemon) openPairing() {
	var code string
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			d.update(func(s *device.Status) { s.State, s.Fault = device.StateFault, "rng" })
			return
		}
		code = fmt.Sprintf("%06d", n.Int64())
		d.mu.Lock()
		used := d.usedCodes[code]
		d.usedCodes[code] = true
		d.mu.Unlock()
		if !used {
			break
		}
	}
	d.Log.Info("pairing window open", "seconds", PairWindow.Seconds())
	d.update(func(s *device.Status) { s.State, s.Code = device.StatePairing, code })
}

// reset performs a confirmed factory reset.
func (d *Daemon) reset(ctx context.Context) {
	d.mu.Lock()
	d.unacked = "" // the reset is the answer to any fault
	d.mu.Unlock()
	d.update(func(s *device.Status) { s.State = device.StateResetting })
	d.Log.Warn("factory reset confirmed")
	var err error
	if d.Reset != nil {
		err = d.Reset(ctx)
	} else {
		var n int
		n, err = d.Rec.Store.EraseAll()
		d.SetRecipients(storage.Recipients{})
		d.Log.Warn("factory reset: recordings erased", "recordings", n)
	}
	if err != nil {
		d.Log.Error("factory reset failed", "err", err)
		d.update(func(s *device.Status) { s.State, s.Fault = device.StateFault, "disk" })
	}
}

// start begins a recording, or reports why it cannot.
func (d *Daemon) start(ctx context.Context, open func(SourceSpec, *slog.Logger) ([]capture.Source, error)) (context.CancelFunc, chan recDone) {
	rcpt, ok := d.recipients()
	if !ok {
		if d.Status().State == device.StateNoCase {
			d.Log.Warn("recording refused: no case (the laptop closed it; choose a case with attune case use)")
		} else {
			d.Log.Warn("recording refused: no recipients (pair first)")
		}
		d.idleState()
		return nil, nil
	}
	if b := d.Status().Battery; b >= 0 && b <= device.BatteryStop {
		d.Log.Warn("recording refused: battery nearly flat", "percent", b)
		return nil, nil
	}
	if free, err := d.Rec.Store.Free(); err != nil || free == 0 {
		d.Log.Warn("recording refused: storage full or unreadable")
		d.idleState()
		return nil, nil
	}
	srcs, err := open(d.Spec, d.Log)
	if err != nil {
		d.Log.Error("recording refused: source failed (is the camera plugged in?)", "err", err)
		d.raise("cam")
		return nil, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan recDone, 1)
	go func() {
		res, err := d.Rec.Record(rctx, srcs, rcpt, d.Spec, func(rec *storage.Rec) {
			d.mu.Lock()
			d.rec = rec
			d.started = d.Clock.Now()
			d.mu.Unlock()
			d.update(func(s *device.Status) {
				s.State, s.Recording, s.Marks, s.Fault = device.StateRecording, rec.ID(), 0, ""
			})
		})
		done <- recDone{res, err}
	}()
	return cancel, done
}

func (d *Daemon) finished(r recDone) {
	d.mu.Lock()
	elapsed := d.Clock.Since(d.started).Seconds()
	d.rec = nil
	if r.res.Bytes > 0 && elapsed > 5 {
		d.bitrate = float64(r.res.Bytes) / elapsed
	}
	d.mu.Unlock()
	d.update(func(s *device.Status) {
		s.Recording, s.LastID, s.LastReason = "", r.res.ID, r.res.EndReason
	})
	if r.err == nil {
		d.idleState()
		return
	}
	// What was recorded is sealed; the practitioner must be told that the
	// recording stopped.
	fault := "rec"
	var se *capture.SourceError
	if errors.As(r.err, &se) && se.Has(mkv.Video) {
		fault = "cam"
	}
	d.Log.Error("recording failed", "recording", r.res.ID, "fault", fault, "err", r.err)
	d.raise(fault)
}

// mark adds a mark to the open recording, sealed in its manifest at once.
func (d *Daemon) mark() {
	d.mu.Lock()
	rec, started := d.rec, d.started
	d.mu.Unlock()
	if rec == nil {
		return
	}
	off := d.Clock.Since(started).Seconds()
	if err := rec.UpdateManifest(func(m *storage.Manifest) {
		m.Marks = append(m.Marks, storage.Mark{Offset: off})
	}); err != nil {
		d.Log.Warn("mark not sealed", "recording", rec.ID(), "err", err)
		return
	}
	d.update(func(s *device.Status) { s.Marks++ })
}
