package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"attune.dev/attune/laptop"
)

type progress interface {
	event(laptop.SyncEvent)
	finish(*laptop.SyncResult, error)
}

// jsonProgress prints one JSON object per event (bytes events at most
// every 250 ms), then {"event":"result",…}.
type jsonProgress struct {
	enc  *json.Encoder
	last time.Time
}

func (p *jsonProgress) event(e laptop.SyncEvent) {
	if e.Kind == "bytes" {
		if time.Since(p.last) < 250*time.Millisecond {
			return
		}
		p.last = time.Now()
	}
	p.enc.Encode(e)
}

func (p *jsonProgress) finish(r *laptop.SyncResult, err error) {
	out := struct {
		Kind string `json:"event"`
		*laptop.SyncResult
		Error string `json:"error,omitempty"`
	}{Kind: "result", SyncResult: r}
	if err != nil {
		out.Error = err.Error()
	}
	p.enc.Encode(out)
}

// lineProgress prints plain lines, for logs and pipes.
type lineProgress struct{ w io.Writer }

func (p *lineProgress) event(e laptop.SyncEvent) {
	switch e.Kind {
	case "plan":
		fmt.Fprintf(p.w, "%d recording(s) on the device, %s to fetch\n", e.Recordings, mb(e.Total))
	case "recording":
		fmt.Fprintf(p.w, "recording %s: %s fetched\n", e.Recording, mb(e.RecBytes))
	case "problem":
		fmt.Fprintf(p.w, "recording %s: PROBLEM: %s\n", e.Recording, e.Message)
	}
}

func (p *lineProgress) finish(r *laptop.SyncResult, err error) { summary(p.w, r, err) }

func summary(w io.Writer, r *laptop.SyncResult, err error) {
	if r == nil {
		return
	}
	for _, rs := range r.Recordings {
		state := "complete"
		if !rs.Complete {
			state = fmt.Sprintf("%d/%d segments held (%s)", rs.Held, rs.Segments, rs.State)
		}
		fmt.Fprintf(w, "  %s  fetched %d, acknowledged %d, %s\n", rs.ID, rs.Fetched, rs.Acked, state)
	}
	if err == nil {
		fmt.Fprintf(w, "synced: %s fetched, device clock set\n", mb(r.Bytes))
	}
}

// barProgress draws a progress bar per recording and in total, on a
// terminal.
type barProgress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	total int64
}

func (p *barProgress) event(e laptop.SyncEvent) {
	switch e.Kind {
	case "plan":
		p.total = e.Total
		fmt.Fprintf(p.w, "%d recording(s), %s to fetch\n", e.Recordings, mb(e.Total))
		return
	case "problem":
		fmt.Fprintf(p.w, "\r\033[K%s: PROBLEM: %s\n", e.Recording, e.Message)
		return
	case "recording":
		fmt.Fprintf(p.w, "\r\033[K%s done (%s)\n", e.Recording, mb(e.RecBytes))
		return
	case "bytes", "segment":
	default:
		return
	}
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	rate := float64(e.Bytes) / max(el, 0.001)
	eta := "-"
	if rate > 0 && e.Total > e.Bytes {
		eta = (time.Duration(float64(e.Total-e.Bytes)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s %3.0f%%  total %s %3.0f%%  %s/s  ETA %s",
		e.Recording[:8], bar(e.RecBytes, e.RecTotal, 16), pct(e.RecBytes, e.RecTotal),
		bar(e.Bytes, e.Total, 16), pct(e.Bytes, e.Total), mb(int64(rate)), eta)
}

func (p *barProgress) finish(r *laptop.SyncResult, err error) {
	fmt.Fprint(p.w, "\r\033[K")
	summary(p.w, r, err)
}

func pct(a, b int64) float64 {
	if b <= 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

func bar(a, b int64, width int) string {
	n := int(pct(a, b) / 100 * float64(width))
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
