package laptop

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
	"attune.dev/attune/storage"
)

// rogueDevice serves a fake device on an in-memory network; its store
// lists every recording under the id rename (unchanged when "").
func rogueDevice(t *testing.T, rename string) (*linktest.Network, *linktest.Backend, string, string) {
	t.Helper()
	b, err := linktest.NewBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if rename != "" {
		b.RewriteListing(func(ix *storage.Index) { ix.ID = rename })
	}
	srv := &link.Server{Backend: b, Key: key, Name: "attune-test", Log: slog.New(slog.DiscardHandler)}
	pin, err := srv.Pin()
	if err != nil {
		t.Fatal(err)
	}
	n := &linktest.Network{}
	const addr = "device.test:8443"
	ln, err := n.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, b, addr, pin
}

// outside lists what exists in dir apart from home.
func outside(t *testing.T, dir, home string) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p == dir {
			return nil
		}
		if p == home {
			return filepath.SkipDir
		}
		got = append(got, p)
		return nil
	})
	return got
}

// TestRogueDeviceIDs: a device with a pinned key that sends ids climbing
// out of the home (its device id at pairing, recording ids at sync) is
// refused with a clear error, and nothing is written outside the home.
func TestRogueDeviceIDs(t *testing.T) {
	for _, bad := range []string{"../x", "../../x", "..", "/tmp/x", "0123456789abcde/", "\x1b[2J0123456789ab"} {
		t.Run("pair "+bad, func(t *testing.T) {
			dir := t.TempDir()
			homeDir := filepath.Join(dir, "home")
			h, err := OpenHome(homeDir)
			if err != nil {
				t.Fatal(err)
			}
			n, b, addr, _ := rogueDevice(t, "")
			b.SetDeviceID(bad)
			b.OpenWindow("123456")
			_, _, err = h.Pair(t.Context(), n, addr, "123456", CaseOptions{Label: "A", X25519: true, NoPassphrase: true})
			if err == nil || !strings.Contains(err.Error(), "device_id") || !strings.Contains(err.Error(), "16 lowercase hex digits") {
				t.Fatalf("pairing with device id %q: %v", bad, err)
			}
			if strings.ContainsFunc(err.Error(), isControl) {
				t.Errorf("error holds control characters: %q", err)
			}
			if got := outside(t, dir, homeDir); len(got) != 0 {
				t.Errorf("written outside the home: %v", got)
			}
			if devs, _ := h.Devices(); len(devs) != 0 {
				t.Errorf("devices saved: %+v", devs)
			}
			// The home refuses such an id on its own too.
			if err := h.SaveDevice(&Device{ID: bad}); err == nil {
				t.Errorf("SaveDevice(%q) took it", bad)
			}
			if got := outside(t, dir, homeDir); len(got) != 0 {
				t.Errorf("written outside the home: %v", got)
			}
		})
	}
	for _, bad := range []string{"../x", "../../../x", "0123456789abcdef/../../x", "\x1b]0;pwned\x07"} {
		t.Run("sync "+bad, func(t *testing.T) {
			dir := t.TempDir()
			homeDir := filepath.Join(dir, "home")
			h, err := OpenHome(homeDir)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := h.NewCase("A", true, "")
			if err != nil {
				t.Fatal(err)
			}
			n, b, addr, devPin := rogueDevice(t, bad)
			rcpt, err := storage.ParseRecipients(strings.NewReader(cs.Recipients[0] + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := linktest.Record(b.Storage(), rcpt, []byte("one"), []byte("two")); err != nil {
				t.Fatal(err)
			}
			cert, pin, err := h.Cert()
			if err != nil {
				t.Fatal(err)
			}
			b.SetLaptopPin(pin)
			dev := &Device{ID: "0123456789abcdef", Pin: devPin, Addr: addr, Case: cs.ID}
			c, err := link.NewClient(n, addr, cert, devPin)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := h.Sync(t.Context(), c, dev, SyncOptions{})
			if err == nil || !strings.Contains(err.Error(), "malformed index") || !strings.Contains(err.Error(), "nothing was fetched") {
				t.Fatalf("sync with recording id %q: %v", bad, err)
			}
			if strings.ContainsFunc(err.Error(), isControl) {
				t.Errorf("error holds control characters: %q", err)
			}
			if len(res.Recordings) != 0 {
				t.Errorf("recordings synced: %+v", res.Recordings)
			}
			if got := outside(t, dir, homeDir); len(got) != 0 {
				t.Errorf("written outside the home: %v", got)
			}
			// A DeviceAPI that does not check (not link.Client) is refused
			// by Sync itself.
			list, _ := b.Storage().List()
			for _, ix := range list {
				ix.ID = bad
			}
			_, err = h.Sync(t.Context(), listOnly{list}, dev, SyncOptions{})
			if err == nil || !strings.Contains(err.Error(), "malformed recording") {
				t.Fatalf("sync of a listing with id %q: %v", bad, err)
			}
			if got := outside(t, dir, homeDir); len(got) != 0 {
				t.Errorf("written outside the home: %v", got)
			}
			if ents, _ := os.ReadDir(filepath.Join(homeDir, vaultDir, cs.ID)); len(ents) != 0 {
				t.Errorf("vault entries: %v", ents)
			}
		})
	}
}

// listOnly lists recordings and fails everything else.
type listOnly struct{ list []*storage.Index }

func (l listOnly) SetClock(context.Context, time.Time) (link.ClockStatus, error) {
	return link.ClockStatus{}, nil
}
func (l listOnly) Recordings(context.Context) ([]*storage.Index, error) { return l.list, nil }
func (l listOnly) Audit(context.Context, uint64) ([]byte, error)        { return nil, nil }
func (l listOnly) OpenSegment(context.Context, string, int, int64) (io.ReadCloser, error) {
	return nil, errors.New("not here")
}
func (l listOnly) Manifest(context.Context, string, io.Writer) (int64, error) {
	return 0, errors.New("not here")
}
func (l listOnly) Ack(context.Context, string, []int, bool) (*storage.Index, error) {
	return nil, errors.New("not here")
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }
