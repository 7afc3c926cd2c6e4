package system

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/jonboulle/clockwork"

	"attune.dev/attune/board"
	"attune.dev/attune/device"
	"attune.dev/attune/ui"
)

// OpenBoard opens the board profile named by cfg.Board (the simulated one
// or real pins through periph.io) and wires its lights, display and
// buttons, and the simulated board's web panel, to the daemon through ui,
// timed by clock. What the board works without (a missing battery gauge) is
// logged as a warning, once. The caller closes the board after Run returns.
func OpenBoard(cfg Config, clock clockwork.Clock, log *slog.Logger) (Hardware, *board.Board, error) {
	prof, err := board.LoadProfile(cfg.Board)
	if err != nil {
		return Hardware{}, nil, err
	}
	var (
		b   *board.Board
		sim *board.Sim
	)
	if prof.Simulated() {
		if sim, err = board.NewSimFromProfile(prof); err != nil {
			return Hardware{}, nil, err
		}
		b = sim.Board()
	} else if b, err = board.Open(prof); err != nil {
		return Hardware{}, nil, err
	}
	return frontPanel(prof.Name, b, sim, clock, log), b, nil
}

// frontPanel drives b's LED and display from the daemon's status and turns
// its button gestures into the daemon's events.
func frontPanel(name string, b *board.Board, sim *board.Sim, clock clockwork.Clock, log *slog.Logger) Hardware {
	for _, w := range b.Warnings {
		log.Warn("board", "err", w)
	}
	panel := ui.NewPanel(clock, b.LED, b.Display, log)
	h := Hardware{
		Name:      name,
		Simulated: sim != nil,
		Battery:   b.Battery,
		Show: func(ctx context.Context, d *Daemon) error {
			var wg sync.WaitGroup
			var runErr error
			wg.Go(func() { runErr = panel.Run(ctx) })
			err := ui.Follow(ctx, clock, panel, d.Changed(), d.Status)
			wg.Wait()
			return errors.Join(err, runErr)
		},
		Buttons: func(ctx context.Context, d *Daemon) error {
			return ui.RunButtons(ctx, clock, b.Buttons, func(a ui.Action) {
				if ev, ok := panelEvents[a]; ok {
					d.Send(ev)
				}
			})
		},
	}
	if sim != nil {
		h.WebPanel = func(ctx context.Context, ln net.Listener, d *Daemon) error {
			web := &ui.WebPanel{Sim: sim, Panel: panel, Status: d.Status, Clock: clock, Log: log}
			return web.Serve(ctx, ln)
		}
	}
	return h
}

// panelEvents maps front-panel actions to the state machine's events.
var panelEvents = map[ui.Action]device.Event{
	ui.ActionRec:   device.EventRec,
	ui.ActionMark:  device.EventMark,
	ui.ActionPair:  device.EventPair,
	ui.ActionReset: device.EventReset,
	ui.ActionOther: device.EventOther,
}
