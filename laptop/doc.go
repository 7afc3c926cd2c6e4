// Package laptop holds the logic of attune, the practitioner's laptop
// companion: the home directory (the laptop's key, paired devices, cases and
// their age identities, the vault of synced recordings), the workflows of a
// case from pairing to close and crypto-erasure, sync, and export — turning
// a decrypted recording into a file any player opens, and the
// practitioner's marks into chapters and subtitle or spreadsheet files.
//
// A recording arrives as one live Matroska stream (docs/FORMAT.md): an
// unknown-size Segment of unknown-size Clusters, no Cues, no Duration. It
// plays, but players cannot seek it or show its length. Export rewrites it,
// block for block and without re-encoding, as a finalized Matroska file.
//
// This package runs on Linux, macOS and Windows: it must never use a
// POSIX-only call outside a _linux.go/_unix.go file with a portable
// variant, never link the device's code, and never print or log — it
// returns what happened and cmd/attune says it.
package laptop
