package laptop

import (
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
