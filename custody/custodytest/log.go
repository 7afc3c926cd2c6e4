package custodytest

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"attune.dev/attune/custody"
)

// Log is an audit chain in memory. It is safe for concurrent use.
type Log struct {
	now func() (time.Duration, time.Time, bool)

	mu    sync.Mutex
	raw   []byte
	offs  []int // offs[i]: offset in raw of the record with seq i+1
	heads []string
}

// NewLog starts an empty chain. now gives the time of each record as
// system.OpenAudit's does: the monotonic time, the wall time and whether it
// is trusted; nil means zero times, untrusted.
func NewLog(now func() (mono time.Duration, wall time.Time, trusted bool)) *Log {
	if now == nil {
		now = func() (time.Duration, time.Time, bool) { return 0, time.Time{}, false }
	}
	return &Log{now: now}
}

// Append seals r as the next record and returns it as written.
func (l *Log) Append(r custody.Record) (custody.Record, error) {
	if err := r.CheckNew(); err != nil {
		return custody.Record{}, fmt.Errorf("audit append: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seq, head := l.head()
	mono, wall, trusted := l.now()
	r, line, err := custody.Seal(r, seq+1, head, mono, wall, trusted)
	if err != nil {
		return custody.Record{}, fmt.Errorf("audit append: %v", err)
	}
	l.offs = append(l.offs, len(l.raw))
	l.raw = append(append(l.raw, line...), '\n')
	l.heads = append(l.heads, custody.LineHash(line))
	return r, nil
}

func (l *Log) head() (uint64, string) {
	if len(l.heads) == 0 {
		return 0, custody.ZeroHash
	}
	return uint64(len(l.heads)), l.heads[len(l.heads)-1]
}

// Head returns the seq and line hash of the last record (0 and
// custody.ZeroHash for an empty chain).
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head()
}

// Records returns the records after afterSeq and their lines (each with its
// newline), as system.Audit's Records does.
func (l *Log) Records(afterSeq uint64) ([]custody.Record, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if afterSeq >= uint64(len(l.offs)) {
		return nil, nil, nil
	}
	head := custody.ZeroHash
	if afterSeq > 0 {
		head = l.heads[afterSeq-1]
	}
	raw := bytes.Clone(l.raw[l.offs[afterSeq]:])
	recs, err := custody.VerifyChainFrom(afterSeq, head, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("audit records: %w", err)
	}
	return recs, raw, nil
}

// Bytes returns the whole chain, as the device's audit.log would hold it.
func (l *Log) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.raw)
}
