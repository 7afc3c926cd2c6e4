// Command attune is the practitioner's laptop companion to an Attune
// device: pairing, sync, listing, export and the cases' lifecycle. It only
// parses flags, prints and sets the exit code; the work is package laptop's.
//
// The version it reports is set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/attune
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// The live heap is small (a few buffers in flight); collecting less
	// often keeps a sync's CPU on the footage. GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "attune:", err)
		os.Exit(1)
	}
}
