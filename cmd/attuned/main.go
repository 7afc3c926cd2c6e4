// Command attuned is the Attune recording daemon for the device.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "attuned:", err)
		os.Exit(1)
	}
}
