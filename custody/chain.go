package custody

import (
	"bytes"
	"errors"
	"fmt"
)

// ChainError says where an audit chain stops verifying.
type ChainError struct {
	// Seq is the sequence number the record at the break should have had:
	// one more than the last record that verified.
	Seq    uint64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// VerifyChain verifies a whole chain (the bytes of an audit.log): records
// numbered from 1, the first with prev ZeroHash, each record's prev the hash
// of the line before it. It detects a modified, removed, reordered or
// inserted record and returns a *ChainError naming the seq where the chain
// breaks, with the records before the break. Empty input is an empty chain.
func VerifyChain(raw []byte) ([]Record, error) {
	return VerifyChainFrom(0, ZeroHash, raw)
}

// VerifyChainFrom verifies raw as the continuation of a chain whose last
// record was seq and had line hash head: its records must be numbered from
// seq+1, and the first one's prev must be head. VerifyChainFrom(0, anchor,
// raw) verifies a whole chain started on an anchor.
func VerifyChainFrom(seq uint64, head string, raw []byte) ([]Record, error) {
	if !isHex64(head) {
		return nil, errors.New("verify audit chain: head must be 64 lowercase hex digits")
	}
	var recs []Record
	prev := head
	for len(raw) > 0 {
		want := seq + 1
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return recs, &ChainError{Seq: want, Reason: "the last record is cut off (no newline)"}
		}
		line := raw[:i]
		raw = raw[i+1:]
		r, err := ParseLine(line)
		if err != nil {
			return recs, &ChainError{Seq: want, Reason: err.Error()}
		}
		if r.Prev != prev {
			return recs, &ChainError{Seq: want, Reason: fmt.Sprintf("record (seq %d) does not follow the record before it: a record was altered, removed, reordered or inserted", r.Seq)}
		}
		if r.Seq != want {
			return recs, &ChainError{Seq: want, Reason: fmt.Sprintf("record says seq %d: records out of sequence", r.Seq)}
		}
		recs = append(recs, r)
		prev = LineHash(line)
		seq = want
	}
	return recs, nil
}

// VerifyDeviceChain verifies a device's audit chain as the device keeps
// it: a whole chain from seq 1, or, after a factory reset, a chain that
// starts at the reset record. A reset keeps only that record (the earlier
// ones name other cases' recordings), so such a chain is anchored at the
// reset record's own seq-1 and prev: the seq and line hash of the last
// record before the reset, which the erasure certificate signed as its
// AuditSeq and AuditHead (Anchor returns them). Whoever verifies such a
// chain must check that anchor against the certificate.
func VerifyDeviceChain(raw []byte) ([]Record, error) {
	seq, head := Anchor(raw)
	return VerifyChainFrom(seq, head, raw)
}

// Anchor is where raw, a device's chain as it keeps it, starts: 0 and
// ZeroHash for a whole chain; the seq-1 and prev of its first record when
// that record is a factory reset's. Anything else is taken as a whole
// chain, so that VerifyChainFrom names the break.
func Anchor(raw []byte) (uint64, string) {
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		return 0, ZeroHash
	}
	first, err := ParseLine(raw[:i])
	if err != nil || first.Event != EventReset || first.Seq < 2 {
		return 0, ZeroHash
	}
	return first.Seq - 1, first.Prev
}
