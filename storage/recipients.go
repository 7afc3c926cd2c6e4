package storage

import (
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
)

// Recipient kinds, as written in the index.
const (
	KindX25519 = "x25519"
	KindHybrid = "mlkem768x25519"
)

// Recipients is the set of age recipients a recording is sealed to.
type Recipients struct {
	List []age.Recipient
	Kind string
	// CaseRef is the opaque reference of the case these recipients belong
	// to (set by pairing; empty for a recipients file). It is written in
	// each recording's index so the laptop knows which case key opens it.
	CaseRef string
}

// ParseRecipients reads recipients in the format of `age -R`: one per line,
// blank lines and lines starting with # ignored. All must be of one kind:
// X25519 (age1…) or post-quantum hybrid (age1pq1…), as age requires.
func ParseRecipients(r io.Reader) (Recipients, error) {
	list, err := age.ParseRecipients(r)
	if err != nil {
		return Recipients{}, fmt.Errorf("recipients: %v", err)
	}
	return NewRecipients(list)
}

// NewRecipients checks that list is non-empty and of one supported kind.
func NewRecipients(list []age.Recipient) (Recipients, error) {
	if len(list) == 0 {
		return Recipients{}, errors.New("recipients: none given")
	}
	kind := ""
	for _, r := range list {
		var k string
		switch r.(type) {
		case *age.X25519Recipient:
			k = KindX25519
		case *age.HybridRecipient:
			k = KindHybrid
		default:
			return Recipients{}, fmt.Errorf("recipients: unsupported recipient type %T", r)
		}
		if kind != "" && k != kind {
			return Recipients{}, errors.New("recipients: post-quantum (age1pq1…) and X25519 (age1…) recipients cannot be mixed in one file; use one kind")
		}
		kind = k
	}
	return Recipients{List: list, Kind: kind}, nil
}

// ReadRecipientsFile reads a recipients file.
func ReadRecipientsFile(path string) (Recipients, error) {
	f, err := os.Open(path)
	if err != nil {
		return Recipients{}, fmt.Errorf("recipients: %v", err)
	}
	defer f.Close()
	rs, err := ParseRecipients(f)
	if err != nil {
		return Recipients{}, fmt.Errorf("%v (in %s)", err, path)
	}
	return rs, nil
}
