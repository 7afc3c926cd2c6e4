package system

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"attune.dev/attune/device"
	"github.com/jonboulle/clockwork"
)

// Signals turns SIGTERM and SIGINT into cancellation of the returned
// context (the open recording is sealed, then the daemon exits) and, when
// d is not nil, SIGUSR1 into REC and SIGUSR2 into MARK — the headless way to
// drive a device without a front panel. Call stop to release the signals.
func Signals(ctx context.Context, d *Daemon, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				switch sig {
				case syscall.SIGUSR1:
					if d != nil {
						d.Send(device.EventRec)
					}
				case syscall.SIGUSR2:
					if d != nil {
						d.Send(device.EventMark)
					}
				default:
					log.Info("stopping", "signal", sig.String())
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}

// notify tells systemd (if it started us with Type=notify) our state, e.g.
// "READY=1" or "STOPPING=1". Without systemd it does nothing.
func notify(state string) {
	daemon.SdNotify(false, state)
}

// watchdog pings systemd's watchdog at half its interval (on clock) while
// alive() holds, until ctx is done. Without a watchdog configured it returns
// at once.
func watchdog(ctx context.Context, clock clockwork.Clock, alive func() bool) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return
	}
	t := clock.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			if alive() {
				daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}
}
