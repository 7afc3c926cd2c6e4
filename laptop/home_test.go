package laptop

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCasesRetention(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.NewCase("Family A", false, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "mlkem768x25519" || len(c.Recipients) != 1 {
		t.Fatalf("case %+v", c)
	}
	if fi, _ := os.Stat(filepath.Join(h.Dir, "cases", c.ID, "identity")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity mode %v", fi.Mode())
	}
	if _, err := h.Identity(c, nil); err != nil {
		t.Fatal(err)
	}
	c.Consent = append(c.Consent, Consent{Who: "parent", Date: "2026-11-01", SharedReview: true})
	closed := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	days := 60
	c.Closed, c.RetentionDays = &closed, &days
	h.SaveCase(c)
	vault := filepath.Join(h.Dir, "vault", c.ID, "0123456789abcdef")
	os.MkdirAll(vault, 0o700)
	os.WriteFile(filepath.Join(vault, "000000.age"), []byte("ciphertext"), 0o600)

	// Day 59: kept. Day 60: erased on the next run.
	if done, _ := h.EraseExpired(closed.AddDate(0, 0, 59)); len(done) != 0 {
		t.Fatal("erased before the retention period ended")
	}
	done, err := h.EraseExpired(closed.AddDate(0, 0, 60))
	if err != nil || len(done) != 1 {
		t.Fatalf("erase expired: %v %d", err, len(done))
	}
	c2, _ := h.Case(c.ID)
	if c2.Erased == nil || len(c2.Consent) != 1 {
		t.Fatalf("case after erasure: %+v", c2)
	}
	if _, err := h.Identity(c2, nil); err == nil {
		t.Fatal("identity still loads")
	}
	if _, err := os.Stat(vault); !os.IsNotExist(err) {
		t.Fatal("vault copy survived erasure")
	}

	// A protected identity needs its passphrase.
	p, err := h.NewCase("Family B", true, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Identity(p, func() (string, error) { return "wrong", nil }); err == nil {
		t.Fatal("wrong passphrase opened the case key")
	}
	if _, err := h.Identity(p, func() (string, error) { return "correct horse", nil }); err != nil {
		t.Fatal(err)
	}
}

// TestCaseKeyProtectedByDefault: a case is made only with a passphrase or
// the explicit choice of an unprotected key; a protected key is unlocked
// once per process and is not in plain text on disk; erasing forgets the
// unlocked key too.
func TestCaseKeyProtectedByDefault(t *testing.T) {
	h, err := OpenHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = h.Pair(t.Context(), failDialer{}, "192.0.2.1:8443", "123456", CaseOptions{Label: "Family A", X25519: true})
	if !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("pairing without a passphrase or the opt-out: %v", err)
	}
	if _, err := h.StartCase(t.Context(), nil, &Device{}, CaseOptions{Label: "Family A"}); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("a new case without a passphrase or the opt-out: %v", err)
	}
	if cases, _ := h.Cases(); len(cases) != 0 {
		t.Fatalf("a refused case was made: %+v", cases)
	}

	c, err := h.newCase(CaseOptions{Label: "Family A", X25519: true, Passphrase: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(h.Dir, "cases", c.ID, "identity"))
	if !c.Protected || bytes.Contains(raw, []byte("AGE-SECRET-KEY")) || !bytes.Contains(raw, []byte("BEGIN AGE ENCRYPTED FILE")) {
		t.Fatalf("case key on disk is not passphrase-protected:\n%s", raw)
	}
	asked := 0
	pass := func() (string, error) { asked++; return "correct horse", nil }
	for range 3 {
		if _, err := h.Identity(c, pass); err != nil {
			t.Fatal(err)
		}
	}
	if asked != 1 {
		t.Fatalf("passphrase asked %d times in one process, want once", asked)
	}
	if _, err := h.Erase(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Identity(c, pass); err == nil {
		t.Fatal("an erased case key still unlocks from memory")
	}

	u, err := h.newCase(CaseOptions{Label: "Family B", X25519: true, NoPassphrase: true})
	if err != nil || u.Protected {
		t.Fatalf("unprotected case by choice: %+v %v", u, err)
	}
}
