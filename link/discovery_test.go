package link_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"attune.dev/attune/link"
)

func TestAnnounceRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	if err := link.Announce(ctx, "attune-x", 8443, nil); err == nil || !strings.Contains(err.Error(), "interfaces") {
		t.Errorf("no interfaces: %v", err)
	}
	if err := link.Announce(ctx, "attune-x", 0, []string{"usb0"}); err == nil {
		t.Error("port 0 accepted")
	}
}

func TestFoundAddr(t *testing.T) {
	for _, tc := range []struct {
		f    link.Found
		want string
	}{
		{link.Found{Port: 8443, IPs: []net.IP{net.ParseIP("fe80::1"), net.ParseIP("10.0.0.2")}, Iface: "usb0"}, "10.0.0.2:8443"},
		{link.Found{Port: 8443, IPs: []net.IP{net.ParseIP("fe80::1")}, Iface: "usb0"}, "[fe80::1%usb0]:8443"},
		{link.Found{Port: 8443, IPs: []net.IP{net.ParseIP("fd00::2")}, Iface: "usb0"}, "[fd00::2]:8443"},
		{link.Found{Port: 8443}, ""},
	} {
		if got := tc.f.Addr(); got != tc.want {
			t.Errorf("%v: Addr() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// multicastInterface returns an interface multicast DNS can run on here.
func multicastInterface() string {
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagMulticast == 0 {
			continue
		}
		if addrs, _ := i.Addrs(); len(addrs) > 0 {
			return i.Name
		}
	}
	return ""
}

// TestAnnounceBrowse announces on one interface and browses for it; it
// needs a multicast-capable interface (multicast loopback delivers the
// announcement to this host).
func TestAnnounceBrowse(t *testing.T) {
	if testing.Short() {
		t.Skip("multicast DNS takes seconds (-short)")
	}
	iface := multicastInterface()
	if iface == "" {
		t.Skip("no multicast-capable interface up")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "attune-test-" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- link.Announce(ctx, name, 18443, []string{iface}) }()
	// Another device announced only on an interface that is not there
	// must not be heard on this one.
	hidden := name + "-hidden"
	done2 := make(chan error, 1)
	go func() { done2 <- link.Announce(ctx, hidden, 18444, []string{"attunenone0"}) }()
	defer func() {
		cancel()
		for _, d := range []chan error{done, done2} {
			if err := <-d; err != nil {
				t.Errorf("Announce: %v", err)
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		found, err := link.Browse(context.Background(), 2*time.Second)
		if err != nil {
			t.Fatalf("Browse: %v", err)
		}
		for _, f := range found {
			if f.Name == hidden {
				t.Errorf("found %s, announced on another interface", hidden)
			}
			if f.Name == name {
				if f.Port != 18443 || f.Addr() == "" || f.Iface != iface {
					t.Errorf("found %+v", f)
				}
				return
			}
		}
	}
	t.Errorf("announced %s on %s but did not find it", name, iface)
}
