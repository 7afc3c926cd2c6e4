// Package storage is the device's encrypted segment store.
//
// A recording is a directory DATA/recordings/<id>/ holding the live Matroska
// stream cut at flush points into segments 000000.age, 000001.age, …, each a
// complete age file; an encrypted manifest (manifest.age); and a small
// plaintext index (index.json) with sizes, SHA-256 hashes and the recording
// state. Every file is written under a temporary name, fsynced, renamed and
// the directory fsynced, so a power cut loses at most the segment being
// written. docs/FORMAT.md describes the layout for anyone who must recover
// footage without this software. The layout's names (RecordingsDir,
// IndexName, ManifestName, SegmentName) are exported: the laptop's vault
// keeps each recording under the same names.
//
// This package must never write plaintext footage or personal data to disk:
// the stream is encrypted as it is written, the manifest is sealed, and the
// index holds only opaque ids, sizes and hashes. It never holds a key that
// can decrypt what it stores.
package storage
