// Package link connects a device to the practitioner's laptop: the device's
// long-term key and self-signed certificate, pairing with a one-time code,
// the device's HTTPS API and its client, and discovery over DNS-SD.
//
// Pairing runs CPace (a PAKE) keyed with the 6-digit code shown on the
// device, bound to the device's TLS certificate as the laptop sees it, and
// confirms the key explicitly before either side accepts the other's
// payload: the laptop's certificate pin and the case's age recipients go to
// the device, the device's certificate pin comes back. After pairing every
// request is mutual TLS 1.3 with both certificates pinned; a peer that is
// not the paired laptop gets 403 and nothing else. docs/API.md describes
// the protocol and the API byte by byte, including how to use them with
// curl.
//
// The server takes a net.Listener and the client a Dialer, so tests run
// both over in-memory pipes (package linktest).
//
// This package must never log personal data (no case references, no
// recipients, no addresses), never accept a pairing without a confirmed
// key, never serve anything but /pair/ to a client whose certificate is not
// the paired laptop's, and never hold or see a key that decrypts footage:
// what it serves is ciphertext as storage sealed it.
package link
