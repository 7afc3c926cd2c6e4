package gadget

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// fakeConfigfs is a temporary directory standing in for configfs with
// libcomposite loaded and one USB device controller: items are made with
// mkdir and removed with rmdir (fakeRmdir), which takes their attributes
// and default groups with them but refuses while items made inside remain.
func fakeConfigfs(t *testing.T, udcs ...string) Config {
	t.Helper()
	dir := t.TempDir()
	c := Config{Configfs: filepath.Join(dir, "config"), UDCDir: filepath.Join(dir, "udc"), ID: "0123456789abcdef0123456789abcdef", Version: "1.2.0"}
	os.MkdirAll(filepath.Join(c.Configfs, "usb_gadget"), 0o755)
	os.MkdirAll(c.UDCDir, 0o755)
	for _, u := range udcs {
		os.WriteFile(filepath.Join(c.UDCDir, u), nil, 0o644)
	}
	return c
}

var defaultGroups = map[string]bool{"functions": true, "configs": true, "strings": true, "os_desc": true, "webusb": true, "interface.ncm": true}

// fakeRmdir is rmdir on configfs: an item goes with its attributes and its
// default groups, but not while items made by mkdir (or symlinks) remain.
func fakeRmdir(p string) error {
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		q := filepath.Join(p, e.Name())
		switch {
		case e.IsDir() && defaultGroups[e.Name()]:
			if err := fakeRmdir(q); err != nil {
				return err
			}
		case e.Type().IsRegular():
			os.Remove(q)
		}
	}
	return syscall.Rmdir(p)
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCreateAndRemove(t *testing.T) {
	c := fakeConfigfs(t, "musb-hdrc.0", "fe980000.usb")
	withFakeRmdir(t, fakeRmdir)
	g, err := Create(c)
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(c.Configfs, "usb_gadget", "attune")
	for file, want := range map[string]string{
		"idVendor":                                "0x1d6b",
		"idProduct":                               "0x0104",
		"bDeviceClass":                            "0xef",
		"strings/0x409/manufacturer":              "Attune",
		"strings/0x409/product":                   "Attune recorder 1.2.0",
		"strings/0x409/serialnumber":              serial(c.ID),
		"functions/ncm.usb0/host_addr":            g.HostMAC.String(),
		"functions/ncm.usb0/dev_addr":             g.DeviceMAC.String(),
		"configs/c.1/strings/0x409/configuration": "NCM network",
		"UDC": "fe980000.usb", // the first controller by name
	} {
		if got := read(t, filepath.Join(d, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(d, "configs/c.1/ncm.usb0")); err != nil || l != filepath.Join(d, "functions/ncm.usb0") {
		t.Errorf("function link: %q %v", l, err)
	}
	// Before the kernel binds it the function has no interface name.
	if _, err := g.Ifname(); err == nil {
		t.Error("Ifname before binding: no error")
	}
	os.WriteFile(filepath.Join(d, "functions/ncm.usb0/ifname"), []byte("usb0\n"), 0o644)
	if n, err := g.Ifname(); err != nil || n != "usb0" {
		t.Errorf("Ifname = %q, %v", n, err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("gadget directory still there after Remove: %v", err)
	}
	// Removing what is gone is fine.
	if err := g.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// TestCreateReplacesStale: a gadget left by a crash (bound, with its
// items) is taken down and made again.
func TestCreateReplacesStale(t *testing.T) {
	c := fakeConfigfs(t, "dummy_udc.0")
	withFakeRmdir(t, fakeRmdir)
	g, err := Create(c)
	if err != nil {
		t.Fatal(err)
	}
	if g.UDC != "dummy_udc.0" {
		t.Fatalf("UDC %q", g.UDC)
	}
	// The second Create removes the first with configfs's rmdir.
	g2, err := Create(c)
	if err != nil {
		t.Fatalf("Create over a stale gadget: %v", err)
	}
	if err := g2.Remove(); err != nil {
		t.Fatal(err)
	}
}

// withFakeRmdir makes Create's gadgets use rmdir for the test's duration.
func withFakeRmdir(t *testing.T, rmdir func(string) error) {
	old := newRmdir
	newRmdir = rmdir
	t.Cleanup(func() { newRmdir = old })
}

func TestCreateErrorsSayWhatToDo(t *testing.T) {
	c := fakeConfigfs(t) // no controller
	if _, err := Create(c); err == nil || !strings.Contains(err.Error(), "dtoverlay=dwc2") {
		t.Errorf("no UDC: err = %v, want the dtoverlay fix", err)
	}
	c = fakeConfigfs(t, "dummy_udc.0")
	os.Remove(filepath.Join(c.Configfs, "usb_gadget"))
	if _, err := Create(c); err == nil || !strings.Contains(err.Error(), "modprobe libcomposite") {
		t.Errorf("no libcomposite: err = %v, want the modprobe fix", err)
	}
}

func TestMACs(t *testing.T) {
	h1, d1 := MACs("a")
	h2, d2 := MACs("a")
	h3, _ := MACs("b")
	if h1.String() != h2.String() || d1.String() != d2.String() {
		t.Errorf("not stable: %s %s / %s %s", h1, d1, h2, d2)
	}
	if h1.String() == h3.String() {
		t.Errorf("ids a and b give the same MAC %s", h1)
	}
	if h1.String() == d1.String() {
		t.Errorf("both ends %s", h1)
	}
	for i := 0; i < 200; i++ {
		h, d := MACs(strings.Repeat("x", i))
		for _, m := range []net.HardwareAddr{h, d} {
			if len(m) != 6 || m[0]&0x02 == 0 || m[0]&0x01 != 0 {
				t.Fatalf("MAC %s is not locally administered unicast", m)
			}
		}
	}
}

func TestMachineID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(p, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	if id, err := MachineID(p); err != nil || id != "0123456789abcdef0123456789abcdef" {
		t.Errorf("MachineID = %q, %v", id, err)
	}
	os.WriteFile(p, []byte("uninitialized\n"), 0o644)
	if _, err := MachineID(p); err == nil {
		t.Error("MachineID accepted uninitialized")
	}
}

func TestLeaseReply(t *testing.T) {
	mac := net.HardwareAddr{0x02, 1, 2, 3, 4, 5}
	l := DefaultLease
	disc, _ := dhcpv4.NewDiscovery(mac)
	offer, err := l.Reply(disc)
	if err != nil || offer == nil {
		t.Fatalf("DISCOVER: %v %v", offer, err)
	}
	check := func(what string, m *dhcpv4.DHCPv4, typ dhcpv4.MessageType) {
		t.Helper()
		if m == nil || m.MessageType() != typ {
			t.Fatalf("%s: reply %v, want %s", what, m, typ)
		}
		if m.TransactionID != disc.TransactionID {
			t.Errorf("%s: xid %v, want %v", what, m.TransactionID, disc.TransactionID)
		}
		if !m.ServerIdentifier().Equal(net.ParseIP("192.168.7.1")) {
			t.Errorf("%s: server id %v", what, m.ServerIdentifier())
		}
		if typ == dhcpv4.MessageTypeNak {
			return
		}
		if !m.YourIPAddr.Equal(net.ParseIP("192.168.7.2")) || m.SubnetMask().String() != "ffffff00" || m.IPAddressLeaseTime(0) != 24*time.Hour {
			t.Errorf("%s: yiaddr %v mask %v lease %v", what, m.YourIPAddr, m.SubnetMask(), m.IPAddressLeaseTime(0))
		}
		// No router, no DNS: the laptop's internet stays on its own network.
		for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionClasslessStaticRoute} {
			if m.Options.Has(o) {
				t.Errorf("%s: has option %v", what, o)
			}
		}
	}
	check("DISCOVER", offer, dhcpv4.MessageTypeOffer)
	req, _ := dhcpv4.NewRequestFromOffer(offer)
	ack, err := l.Reply(req)
	if err != nil {
		t.Fatal(err)
	}
	check("REQUEST", ack, dhcpv4.MessageTypeAck)
	// A laptop asking for another address (its lease from another network).
	other, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.0.0.9"))))
	nak, _ := l.Reply(other)
	check("REQUEST for another address", nak, dhcpv4.MessageTypeNak)
	// A REQUEST to another server is not ours to answer.
	elsewhere, _ := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("192.168.7.9"))))
	if r, _ := l.Reply(elsewhere); r != nil {
		t.Errorf("REQUEST to another server answered: %v", r)
	}
	// Renewing: the address in ciaddr, no requested-address option.
	renew, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithHwAddr(mac),
		dhcpv4.WithClientIP(net.ParseIP("192.168.7.2")), dhcpv4.WithTransactionID(disc.TransactionID))
	r, _ := l.Reply(renew)
	check("renewing REQUEST", r, dhcpv4.MessageTypeAck)
	// A RELEASE gets nothing.
	rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(mac))
	if r, _ := l.Reply(rel); r != nil {
		t.Errorf("RELEASE answered: %v", r)
	}
}
