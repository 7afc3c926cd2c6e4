// Package laptop holds the logic of attune, the practitioner's laptop
// companion, that runs only on the laptop: turning a decrypted recording into
// a file any player opens, and the practitioner's marks into chapters and
// subtitle or spreadsheet files.
//
// A recording arrives as one live Matroska stream (docs/FORMAT.md): an
// unknown-size Segment of unknown-size Clusters, no Cues, no Duration. It
// plays, but players cannot seek it or show its length. Export rewrites it,
// block for block and without re-encoding, as a finalized Matroska file.
package laptop
