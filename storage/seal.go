package storage

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// The seal chain (docs/FORMAT.md, "The seal chain"): age says nothing about
// who encrypted a file, and a recording's recipients are public, so each
// segment's plaintext ends with a seal that ties it to its recording, its
// place and its predecessor under a per-recording key only the device (while
// recording) and the case key's holder ever know.
//
// The seal is an EBML Void element (ID 0xEC), which Matroska readers skip,
// at the very end of each segment's plaintext:
//
//	EC F0                 Void, 112 bytes of content
//	"attseal1"            8 bytes, the format
//	seq                   8 bytes, big-endian: the segment number
//	prev                  32 bytes: the previous segment's mac (zeros for 0)
//	mac                   32 bytes: HMAC-SHA256(key, MACInput(…))
//	key                   32 bytes: the recording's seal key in segment 0,
//	                      zeros in every other segment
const (
	// SealSize is the size of the seal at the end of a segment's plaintext.
	SealSize = 2 + 8 + 8 + 32 + 32 + 32
	// SealKeySize is the size of a recording's seal key.
	SealKeySize = 32
	sealMagic   = "attseal1"
	// sealDomain starts the MAC input.
	sealDomain = "attune segment v1\x00"
)

// Seal is what the trailer of one segment's plaintext says, with the
// SHA-256 of the plaintext before it (the payload).
type Seal struct {
	Seq     uint64
	Prev    [32]byte
	MAC     [32]byte
	Key     [32]byte // segment 0 only
	Payload [32]byte // SHA-256 of the plaintext before the seal
}

// MACInput is the message a segment's MAC authenticates: the domain
// string, the recording id (16 ASCII hex digits), the segment number
// (8 bytes big-endian), the previous segment's MAC (32 zero bytes for
// segment 0) and the SHA-256 of the segment's payload.
func MACInput(id string, seq uint64, prev, payload [32]byte) []byte {
	b := make([]byte, 0, len(sealDomain)+len(id)+8+64)
	b = append(b, sealDomain...)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, prev[:]...)
	return append(b, payload[:]...)
}

// SegmentMAC is HMAC-SHA256(key, MACInput(id, seq, prev, payload)).
func SegmentMAC(key []byte, id string, seq uint64, prev, payload [32]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(MACInput(id, seq, prev, payload))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// appendSeal encodes a seal.
func appendSeal(b []byte, seq uint64, prev, mac [32]byte, key []byte) []byte {
	b = append(b, 0xEC, 0x80|(SealSize-2))
	b = append(b, sealMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, prev[:]...)
	b = append(b, mac[:]...)
	var k [32]byte
	copy(k[:], key)
	return append(b, k[:]...)
}

// ErrNoSeal is returned for a segment whose plaintext does not end with a
// seal: it was not written by this format (or was cut short).
var ErrNoSeal = errors.New("no seal at the end of the segment")

// parseSeal decodes a seal.
func parseSeal(b []byte) (Seal, error) {
	var s Seal
	if len(b) != SealSize || b[0] != 0xEC || b[1] != 0x80|(SealSize-2) || string(b[2:10]) != sealMagic {
		return s, ErrNoSeal
	}
	s.Seq = binary.BigEndian.Uint64(b[10:18])
	copy(s.Prev[:], b[18:50])
	copy(s.MAC[:], b[50:82])
	copy(s.Key[:], b[82:114])
	return s, nil
}

// Verify checks that s is segment n of recording id, sealed with key:
// its number, its MAC, and for segment 0 the key it carries and the zero
// predecessor. It does not check the link to segment n-1 (see Link).
func (s *Seal) Verify(key []byte, id string, n int) error {
	if len(key) != SealKeySize {
		return errors.New("no seal key for this recording")
	}
	if s.Seq != uint64(n) {
		return fmt.Errorf("it is sealed as segment %d, not %d (moved or renumbered)", s.Seq, n)
	}
	want := SegmentMAC(key, id, s.Seq, s.Prev, s.Payload)
	if !hmac.Equal(want[:], s.MAC[:]) {
		return errors.New("its seal does not match this recording (spliced from another recording, or forged)")
	}
	if n == 0 && (subtle.ConstantTimeCompare(s.Key[:], key) != 1 || s.Prev != [32]byte{}) {
		return errors.New("its seal key differs from the manifest's")
	}
	return nil
}

// Link checks that s follows prev, the seal of the segment before it.
func (s *Seal) Link(prev *Seal) error {
	if s.Prev != prev.MAC {
		return fmt.Errorf("segment %d does not follow segment %d (the chain is broken)", s.Seq, prev.Seq)
	}
	return nil
}

// SealKeyBytes decodes the manifest's seal key.
func (m *Manifest) SealKeyBytes() ([]byte, error) {
	k, err := hex.DecodeString(m.SealKey)
	if err != nil || len(k) != SealKeySize {
		return nil, errors.New("the manifest has no valid seal key")
	}
	return k, nil
}

// SealReader hashes a segment's plaintext as it is written to it and, at
// the end, reads the seal from its last SealSize bytes. Write never fails.
type SealReader struct {
	h    hash.Hash
	tail [SealSize]byte
	n    int // bytes held in tail
}

// NewSealReader returns a SealReader ready for a segment's plaintext.
func NewSealReader() *SealReader { return &SealReader{h: sha256.New()} }

// Reset prepares r for the next segment.
func (r *SealReader) Reset() { r.h.Reset(); r.n = 0 }

func (r *SealReader) Write(p []byte) (int, error) {
	total := len(p)
	if len(p) >= SealSize {
		r.h.Write(r.tail[:r.n])
		r.h.Write(p[:len(p)-SealSize])
		r.n = copy(r.tail[:], p[len(p)-SealSize:])
		return total, nil
	}
	if over := r.n + len(p) - SealSize; over > 0 {
		r.h.Write(r.tail[:over])
		r.n = copy(r.tail[:], r.tail[over:r.n])
	}
	r.n += copy(r.tail[r.n:], p)
	return total, nil
}

// Seal returns the seal of the plaintext written so far.
func (r *SealReader) Seal() (Seal, error) {
	if r.n < SealSize {
		return Seal{}, ErrNoSeal
	}
	s, err := parseSeal(r.tail[:])
	if err != nil {
		return s, err
	}
	r.h.Sum(s.Payload[:0])
	return s, nil
}

// ReadSeal reads the seal of a whole plaintext held in memory.
func ReadSeal(plain []byte) (Seal, error) {
	if len(plain) < SealSize {
		return Seal{}, ErrNoSeal
	}
	s, err := parseSeal(plain[len(plain)-SealSize:])
	if err != nil {
		return s, err
	}
	s.Payload = sha256.Sum256(plain[:len(plain)-SealSize])
	return s, nil
}
