package system

import (
	"log/slog"

	"attune.dev/attune/custody"
)

// note appends a record to the audit chain if there is one. A failure is
// logged, never fatal: the footage matters more than its paperwork, and a
// broken chain is detected by whoever verifies it.
func note(a *Audit, log *slog.Logger, r custody.Record) {
	if a == nil {
		return
	}
	if _, err := a.Append(r); err != nil && log != nil {
		log.Error("audit record not written", "event", string(r.Event), "err", err)
	}
}
