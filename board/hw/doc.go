// Package hw is the vocabulary of the front-panel hardware: the canonical
// 7-segment encoding (SegA … SegDP), and the Display, LED, Button and
// Battery that board opens from a profile and ui drives. It lets ui, and
// anything else that only drives a panel, do so without linking the
// drivers.
//
// It holds interfaces and small value types only. It must never import
// anything of attune.dev/attune, nor anything of periph.io but the
// interface-only periph.io/x/conn/v3/gpio (no host or device drivers), and
// never touch hardware itself: board implements these, hwtest fakes them.
package hw
