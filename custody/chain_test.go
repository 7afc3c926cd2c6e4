package custody_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"attune.dev/attune/custody"
	"attune.dev/attune/custody/custodytest"
)

// auditTestChain writes n records to a new audit chain and returns its
// contents.
func auditTestChain(t testing.TB, n int) []byte {
	t.Helper()
	l := custodytest.NewLog(custodytest.NewClock().Now)
	for i := range n {
		if _, err := l.Append(custodytest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	return l.Bytes()
}

func auditLines(raw []byte) [][]byte {
	return bytes.SplitAfter(raw, []byte("\n"))[:bytes.Count(raw, []byte("\n"))]
}

func wantBreak(t *testing.T, what string, raw []byte, seq uint64) {
	t.Helper()
	_, err := custody.VerifyChain(raw)
	var ce *custody.ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: custody.VerifyChain = %v, want a *custody.ChainError", what, err)
	}
	if ce.Seq != seq {
		t.Fatalf("%s: chain broken at seq %d (%v), want seq %d", what, ce.Seq, err, seq)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", seq)) {
		t.Fatalf("%s: error %q does not name seq %d", what, err, seq)
	}
}

func TestAuditCanonicalHash(t *testing.T) {
	raw := auditTestChain(t, 3)
	for _, line := range auditLines(raw) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		i := bytes.LastIndex(line, []byte(`,"hash":"`))
		if i < 0 || len(line)-i != len(`,"hash":"`)+64+2 {
			t.Fatalf("hash is not the last member: %s", line)
		}
		body := append(append([]byte(nil), line[:i]...), '}')
		sum := sha256.Sum256(body)
		var r custody.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("hash %s is not SHA-256 of the line without it (%x)", r.Hash, sum)
		}
	}
}

func TestAuditTamperDetected(t *testing.T) {
	raw := auditTestChain(t, 100)
	lines := auditLines(raw)
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	cut := func(from, to int) [][]byte { return append([][]byte(nil), lines[from:to]...) }

	// One digit of a field in the middle (seq 51 is a sealed record).
	l51 := string(lines[50])
	if !strings.Contains(l51, `"bytes":1050`) {
		t.Fatalf("unexpected test record: %s", l51)
	}
	mod := strings.Replace(l51, `"bytes":1050`, `"bytes":1051`, 1)
	wantBreak(t, "modified field", join(join(cut(0, 50)...), []byte(mod), join(cut(51, 100)...)), 51)

	// Every byte of a middle record, flipped in two ways.
	for i := range lines[49] {
		for _, x := range []byte{0x01, 0x20} {
			l := append([]byte(nil), lines[49]...)
			l[i] ^= x
			wantBreak(t, fmt.Sprintf("byte %d ^ %#x", i, x), join(join(cut(0, 49)...), l, join(cut(50, 100)...)), 50)
		}
	}

	// Removed, swapped, duplicated, first removed.
	wantBreak(t, "removed", join(append(cut(0, 49), cut(50, 100)...)...), 50)
	wantBreak(t, "swapped", join(append(append(cut(0, 49), lines[50], lines[49]), cut(51, 100)...)...), 50)
	wantBreak(t, "duplicated", join(append(append(cut(0, 50), lines[49]), cut(50, 100)...)...), 51)
	wantBreak(t, "first removed", join(cut(1, 100)...), 1)
	wantBreak(t, "last cut short", raw[:len(raw)-1], 100)

	// A forged record inserted after seq 50, with the right prev and its
	// own hash recomputed: it verifies itself, the next record does not.
	forged := custody.Record{Seq: 51, Event: custody.EventDeleted, MonoMS: 1, Recording: "0000000000abc005", Count: 3,
		Prev: custody.LineHash(bytes.TrimSuffix(lines[49], []byte("\n")))}
	forged.Hash, _ = custody.OwnHash(forged)
	fl, _ := json.Marshal(forged)
	if _, err := custody.ParseLine(fl); err != nil {
		t.Fatalf("forged record should verify on its own: %v", err)
	}
	wantBreak(t, "inserted", join(append(append(cut(0, 50), append(fl, '\n')), cut(50, 100)...)...), 52)

	// A modified record whose own hash was recomputed: the next breaks.
	var r50 custody.Record
	json.Unmarshal(bytes.TrimSuffix(lines[49], []byte("\n")), &r50)
	r50.Bytes++
	r50.Hash, _ = custody.OwnHash(r50)
	ml, _ := json.Marshal(r50)
	wantBreak(t, "rehashed", join(append(append(cut(0, 49), append(ml, '\n')), cut(50, 100)...)...), 51)

	// An unknown field, even with a good hash, and whitespace.
	wantBreak(t, "unknown field", join(append(cut(0, 2), []byte(`{"seq":3,"name":"x"}`+"\n"))...), 3)
	wantBreak(t, "blank line", join(append(cut(0, 2), []byte("\n"))...), 3)
}

func TestVerifyChainFrom(t *testing.T) {
	raw := auditTestChain(t, 10)
	lines := auditLines(raw)
	tail := bytes.Join(lines[4:], nil)
	head := custody.LineHash(bytes.TrimSuffix(lines[3], []byte("\n")))
	recs, err := custody.VerifyChainFrom(4, head, tail)
	if err != nil || len(recs) != 6 || recs[0].Seq != 5 {
		t.Fatalf("VerifyChainFrom = %d records, %v", len(recs), err)
	}
	var ce *custody.ChainError
	if _, err := custody.VerifyChainFrom(4, custody.ZeroHash, tail); !errors.As(err, &ce) || ce.Seq != 5 {
		t.Fatalf("wrong head: %v", err)
	}
	if _, err := custody.VerifyChainFrom(5, head, tail); !errors.As(err, &ce) || ce.Seq != 6 {
		t.Fatalf("wrong seq: %v", err)
	}
	if _, err := custody.VerifyChainFrom(0, "nothex", raw); err == nil {
		t.Fatal("bad head accepted")
	}
	if recs, err := custody.VerifyChain(nil); err != nil || len(recs) != 0 {
		t.Fatalf("empty chain: %v %v", recs, err)
	}
}

func TestCaseRef(t *testing.T) {
	if got := custody.CaseRef("0123456789abcdef"); got != "0123456789abcdef" {
		t.Fatalf("case id changed: %s", got)
	}
	got := custody.CaseRef("Smith family")
	if !custody.ValidID(got) || got == custody.CaseRef("Jones family") {
		t.Fatalf("CaseRef = %q", got)
	}
	if custody.CaseRef("") != "" {
		t.Fatal("empty ref changed")
	}
}

func FuzzVerifyChain(f *testing.F) {
	raw := auditTestChain(f, 8)
	f.Add(raw)
	f.Add(auditLines(raw)[0])
	f.Add(raw[:len(raw)-3])
	f.Add(bytes.Replace(raw, []byte(`"seq":3`), []byte(`"seq":4`), 1))
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := custody.VerifyChain(data)
		lines := bytes.Count(data, []byte("\n"))
		if err != nil {
			var ce *custody.ChainError
			if errors.As(err, &ce) && (ce.Seq < 1 || ce.Seq > uint64(lines)+1 || ce.Seq != uint64(len(recs))+1) {
				t.Fatalf("break at seq %d with %d records verified, %d lines", ce.Seq, len(recs), lines)
			}
			return
		}
		// A chain that verifies is exactly its records, re-encoded.
		var again []byte
		for _, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			again = append(append(again, b...), '\n')
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("verified chain is not canonical:\n%q\n%q", data, again)
		}
		if len(recs) > 0 {
			custody.VerifyChainFrom(recs[0].Seq, recs[0].Prev, data)
		}
	})
}

// A device keeps only its reset record after a factory reset: its chain
// then starts there, anchored at the record's own seq-1 and prev. Only a
// reset record anchors; any other record that does not start at seq 1 is
// a break.
func TestVerifyDeviceChainAfterReset(t *testing.T) {
	l := custodytest.NewLog(custodytest.NewClock().Now)
	for i := range 5 {
		if _, err := l.Append(custodytest.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	seq, head := l.Head()
	digest := strings.Repeat("ab", 32)
	if _, err := l.Append(custody.Record{Event: custody.EventReset, Count: 2, SHA256: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(custody.Record{Event: custody.EventBoot}); err != nil {
		t.Fatal(err)
	}
	lines := auditLines(l.Bytes())
	kept := bytes.Join(lines[seq:], nil) // the reset record and what follows
	if s, h := custody.Anchor(kept); s != seq || h != head {
		t.Fatalf("Anchor = %d %s, want %d %s", s, h, seq, head)
	}
	recs, err := custody.VerifyDeviceChain(kept)
	if err != nil || len(recs) != 2 || recs[0].Event != custody.EventReset || recs[0].Seq != seq+1 {
		t.Fatalf("VerifyDeviceChain after a reset = %v, %v", recs, err)
	}
	if recs, err := custody.VerifyDeviceChain(l.Bytes()); err != nil || len(recs) != 7 {
		t.Fatalf("whole chain: %d records, %v", len(recs), err)
	}
	// Not a reset record first: the chain must start at seq 1.
	var ce *custody.ChainError
	if _, err := custody.VerifyDeviceChain(bytes.Join(lines[seq+1:], nil)); !errors.As(err, &ce) || ce.Seq != 1 {
		t.Fatalf("chain starting at a boot record: %v, want a break at seq 1", err)
	}
	// The reset record altered: it no longer parses, so nothing anchors.
	bad := bytes.Replace(kept, []byte(digest), []byte(strings.Repeat("cd", 32)), 1)
	if _, err := custody.VerifyDeviceChain(bad); !errors.As(err, &ce) || ce.Seq != 1 {
		t.Fatalf("altered reset record: %v, want a break at seq 1", err)
	}
}
