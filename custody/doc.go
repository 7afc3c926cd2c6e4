// Package custody is the chain-of-custody vocabulary the device and the
// laptop share, in one place: the audit chain's line format and its
// verification, signed erasure certificates, key pins, and the form of the
// opaque ids (recordings, cases, devices) that custody records may hold.
//
// The device writes audit records and signs certificates (package system
// keeps the append-only log file and builds certificates from its store);
// the laptop keeps copies, verifies them and reports on them (package
// laptop). Both speak this package, so a record or a certificate means the
// same thing on both sides and is encoded and checked by one piece of code.
// docs/FORMAT.md describes the same formats for readers without this
// software.
//
// # The audit chain
//
// The audit chain is the device's append-only, hash-chained event log
// (DATA/audit.log on the device; the laptop keeps a copy per case).
//
// It is JSON Lines: one record per line, each line ending in "\n". A record
// is the JSON encoding of Record by encoding/json (json.Marshal: compact,
// fields in struct order, omitempty fields left out when zero), for example
//
//	{"seq":7,"event":"recording_sealed","mono_ms":912345,"wall":"2026-03-01T10:14:02.5Z","wall_trusted":true,"recording":"0123456789abcdef","count":750,"bytes":1073741824,"sha256":"…","prev":"…","hash":"…"}
//
// Every field is restricted to a small alphabet (digits, lowercase hex,
// [a-z0-9_-], RFC 3339 times), so the encoding needs no escapes and is the
// same for every JSON encoder that keeps field order. A line must be exactly
// the encoding of the record it decodes to: a verifier decodes it, encodes
// the record again and compares the bytes, so there is one way to write
// each record and no byte of a line can change unnoticed.
//
// Two hashes chain the records, both lowercase hex SHA-256:
//
//   - hash (the record's own hash) is SHA-256 of the record's line with the
//     hash member left out: json.Marshal of the record with Hash "" (the
//     field is omitempty and last), which is the line with its final
//     `,"hash":"<64 hex>"` removed before the closing brace. In a shell:
//     sed 's/,"hash":"[0-9a-f]*"}$/}/' | head -c -1 | sha256sum, one line at a time.
//   - prev is SHA-256 of the previous record's exact line bytes (without the
//     newline: head -c -1 | sha256sum), which include that record's hash.
//     The first record's prev is ZeroHash, or the line hash of a chain
//     anchor (VerifyChainFrom).
//
// seq counts from 1 without gaps. mono_ms is the writer's monotonic clock in
// milliseconds; it restarts at every boot (a boot record marks the restart).
// wall is RFC 3339 with nanoseconds in UTC when the wall clock is trusted,
// and empty (wall_trusted false) when it is not: the Pi boots in 1970.
//
// The chain proves order and integrity against a copy kept elsewhere (the
// laptop keeps one per case and refuses a chain that does not extend it);
// on its own it cannot show that records were cut off at the end. The
// factory reset ties the chain to the erasure certificate: the certificate
// names the head of the chain (AuditSeq, AuditHead) and the reset record
// that follows carries the SHA-256 of the signed certificate. The
// certificate's own format is described at CertificateType.
//
// # Rules
//
// This package must never import either side (system, storage, link,
// laptop, capture, board, ui, cmd/...): it may use only the standard
// library. It never does I/O: bytes in, bytes out — no files, no network,
// no clock (callers pass the time), no logging.
package custody
