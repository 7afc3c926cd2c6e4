package system

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"attune.dev/attune/capture"
	"attune.dev/attune/storage"
)

// State is the daemon's state, named as the front panel shows it.
type State string

const (
	StateBooting   State = "booting"
	StateNotPaired State = "not_paired"
	StateReady     State = "ready"
	StateRecording State = "recording"
	StateFull      State = "storage_full"
	StateFault     State = "fault"
)

// Event is something the practitioner (or the system) asks for.
type Event int

const (
	// EventRec toggles recording.
	EventRec Event = iota + 1
	// EventMark marks the current moment of a recording.
	EventMark
)

// Status is a snapshot of the daemon for indicators and APIs.
type Status struct {
	State       State
	Recording   string        // id of the open recording
	Elapsed     time.Duration // of the open recording
	Marks       int
	MinutesLeft int    // recording time left at the current bitrate
	Fault       string // short fault code when State is fault
	LastID      string // the last finished recording
	LastReason  string // why it ended
}

// Daemon is the state machine. Events come in through Send; Run owns the
// recording goroutine and seals any open recording before it returns.
type Daemon struct {
	Rec        *Recorder
	Recipients func() (storage.Recipients, bool) // the current recipients, false if none
	Spec       SourceSpec
	Log        *slog.Logger
	// Open opens the sources; nil means OpenSources.
	Open func(SourceSpec, *slog.Logger) ([]capture.Source, error)

	events chan Event
	ready  chan struct{}

	mu        sync.Mutex
	status    Status
	started   time.Time // monotonic, of the open recording
	rec       *storage.Rec
	bitrate   float64 // ciphertext bytes per second, measured
	listeners []chan struct{}
}

// NewDaemon returns a daemon in the booting state.
func NewDaemon(r *Recorder, rcpt func() (storage.Recipients, bool), spec SourceSpec, log *slog.Logger) *Daemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{
		Rec: r, Recipients: rcpt, Spec: spec, Log: log,
		events:  make(chan Event, 16),
		ready:   make(chan struct{}),
		status:  Status{State: StateBooting},
		bitrate: 2 << 20, // 720p30 MJPEG is about 1–3 MB/s until measured
	}
}

// Send queues an event; it never blocks (a toddler can press faster than
// anything matters: surplus presses are dropped).
func (d *Daemon) Send(ev Event) bool {
	select {
	case d.events <- ev:
		return true
	default:
		return false
	}
}

// Status returns the current status.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	if s.State == StateRecording {
		s.Elapsed = time.Since(d.started)
	}
	return s
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

func (d *Daemon) update(f func(*Status)) {
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

// idleState computes the resting state: ready, full or not paired.
func (d *Daemon) idleState() {
	free, err := d.Rec.Store.Free()
	_, paired := d.Recipients()
	d.update(func(s *Status) {
		switch {
		case err != nil:
			s.State, s.Fault = StateFault, "disk"
		case !paired:
			s.State = StateNotPaired
		case free == 0:
			s.State = StateFull
		default:
			s.State, s.Fault = StateReady, ""
		}
		s.MinutesLeft = int(float64(free) / d.bitrate / 60)
	})
}

type recDone struct {
	res Result
	err error
}

// Run runs the state machine until ctx is done. An open recording is
// stopped and sealed before Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	open := d.Open
	if open == nil {
		open = OpenSources
	}
	d.idleState()
	close(d.ready)
	var (
		stop context.CancelFunc
		done chan recDone
	)
	refresh := time.NewTicker(10 * time.Second)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			if stop != nil {
				stop()
				r := <-done
				d.finished(r)
			}
			return nil
		case <-refresh.C:
			if stop == nil {
				d.idleState()
			}
		case r := <-done:
			stop, done = nil, nil
			d.finished(r)
		case ev := <-d.events:
			switch ev {
			case EventRec:
				if stop != nil {
					stop() // finished() runs when the recorder returns
					continue
				}
				stop, done = d.start(ctx, open)
			case EventMark:
				d.mark()
			}
		}
	}
}

// start begins a recording, or reports why it cannot.
func (d *Daemon) start(ctx context.Context, open func(SourceSpec, *slog.Logger) ([]capture.Source, error)) (context.CancelFunc, chan recDone) {
	rcpt, ok := d.Recipients()
	if !ok {
		d.Log.Warn("recording refused: no recipients (pair first)")
		d.idleState()
		return nil, nil
	}
	if free, err := d.Rec.Store.Free(); err != nil || free == 0 {
		d.Log.Warn("recording refused: storage full or unreadable")
		d.idleState()
		return nil, nil
	}
	srcs, err := open(d.Spec, d.Log)
	if err != nil {
		d.Log.Error("recording refused: source failed", "err", err)
		d.update(func(s *Status) { s.State, s.Fault = StateFault, "cam" })
		return nil, nil
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan recDone, 1)
	go func() {
		res, err := d.Rec.Record(rctx, srcs, rcpt, d.Spec, func(rec *storage.Rec) {
			d.mu.Lock()
			d.rec = rec
			d.started = time.Now()
			d.mu.Unlock()
			d.update(func(s *Status) {
				s.State, s.Recording, s.Marks, s.Fault = StateRecording, rec.ID(), 0, ""
			})
		})
		done <- recDone{res, err}
	}()
	return cancel, done
}

func (d *Daemon) finished(r recDone) {
	d.mu.Lock()
	elapsed := time.Since(d.started)
	d.rec = nil
	if r.res.Bytes > 0 && elapsed > 5*time.Second {
		d.bitrate = float64(r.res.Bytes) / elapsed.Seconds()
	}
	d.mu.Unlock()
	if r.err != nil {
		d.Log.Error("recording failed", "recording", r.res.ID, "err", r.err)
	}
	d.update(func(s *Status) {
		s.Recording, s.LastID, s.LastReason = "", r.res.ID, r.res.EndReason
	})
	d.idleState()
	if r.err != nil && r.res.ID == "" {
		d.update(func(s *Status) { s.State, s.Fault = StateFault, "rec" })
	}
}

// mark adds a mark to the open recording.
func (d *Daemon) mark() {
	d.mu.Lock()
	rec, started := d.rec, d.started
	d.mu.Unlock()
	if rec == nil {
		return
	}
	off := time.Since(started).Seconds()
	if err := rec.UpdateManifest(func(m *storage.Manifest) {
		m.Marks = append(m.Marks, storage.Mark{Offset: off})
	}); err != nil {
		d.Log.Warn("mark not sealed", "recording", rec.ID(), "err", err)
		return
	}
	d.update(func(s *Status) { s.Marks++ })
}

// ErrNoRecipients is returned when there is nobody to seal footage to.
var ErrNoRecipients = errors.New("no recipients: give --recipients FILE (one age recipient per line) or pair with a laptop")
