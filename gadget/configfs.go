package gadget

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// The USB ids: the Linux Foundation's "Multifunction Composite Gadget".
const (
	VendorID  = 0x1d6b
	ProductID = 0x0104
)

// Defaults of Config.
const (
	DefaultConfigfs = "/sys/kernel/config"
	DefaultUDCDir   = "/sys/class/udc"
	DefaultName     = "attune"
)

// function is the NCM function's instance name: the device's interface is
// usb0 unless another gadget took that name.
const function = "ncm.usb0"

// Config says where and what the gadget is.
type Config struct {
	// Configfs is configfs's mount point (DefaultConfigfs); tests give a
	// temporary directory.
	Configfs string
	// UDCDir lists the USB device controllers (DefaultUDCDir).
	UDCDir string
	// Name is the gadget's directory name under usb_gadget (DefaultName).
	Name string
	// ID is a stable id of this device: the MAC addresses and the USB
	// serial number are derived from it (a one-way hash).
	ID string
	// Version is the device's version, for the product string.
	Version string
}

// Gadget is a gadget made by Create.
type Gadget struct {
	dir string
	// UDC is the controller it is bound to, e.g. "fe980000.usb" or
	// "dummy_udc.0".
	UDC string
	// HostMAC and DeviceMAC are the laptop's and the device's end.
	HostMAC, DeviceMAC net.HardwareAddr
	// rmdir removes a configfs item (its attributes go with it). A
	// variable for the tests' stand-in for configfs.
	rmdir func(string) error
}

// newRmdir is the rmdir of Create's gadgets; the tests swap in their
// stand-in for configfs.
var newRmdir = syscall.Rmdir

// MACs derives the two ends' MAC addresses from id: locally administered
// (bit 1 of the first byte set), unicast (bit 0 clear), and different.
func MACs(id string) (host, device net.HardwareAddr) {
	h := sha256.Sum256([]byte("attune usb gadget mac\x00" + id))
	host, device = net.HardwareAddr(h[0:6:6]), net.HardwareAddr(h[6:12:12])
	for _, m := range []net.HardwareAddr{host, device} {
		m[0] = m[0]&^0x01 | 0x02
	}
	if host.String() == device.String() {
		device[5] ^= 0x01
	}
	return host, device
}

// serial is the USB serial number derived from id.
func serial(id string) string {
	h := sha256.Sum256([]byte("attune usb gadget serial\x00" + id))
	return hex.EncodeToString(h[:8])
}

func (c Config) withDefaults() Config {
	if c.Configfs == "" {
		c.Configfs = DefaultConfigfs
	}
	if c.UDCDir == "" {
		c.UDCDir = DefaultUDCDir
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	return c
}

// Create builds the gadget under configfs (a stale one of the same name,
// left by a crash, is removed first) and binds it to the first USB device
// controller. Remove undoes it.
func Create(c Config) (*Gadget, error) {
	c = c.withDefaults()
	if c.ID == "" {
		return nil, errors.New("gadget: no device id")
	}
	base := filepath.Join(c.Configfs, "usb_gadget")
	if _, err := os.Stat(base); err != nil {
		return nil, fmt.Errorf("gadget: %s: %v; load libcomposite (sudo modprobe libcomposite; the package loads it at boot) and check configfs is mounted", base, err)
	}
	udc, err := firstUDC(c.UDCDir)
	if err != nil {
		return nil, err
	}
	g := &Gadget{dir: filepath.Join(base, c.Name), UDC: udc, rmdir: newRmdir}
	g.HostMAC, g.DeviceMAC = MACs(c.ID)
	if _, err := os.Lstat(g.dir); err == nil {
		if err := g.Remove(); err != nil {
			return nil, fmt.Errorf("gadget: a gadget %s is there already and would not go: %v", g.dir, err)
		}
	}
	if err := g.build(c); err != nil {
		g.Remove()
		return nil, err
	}
	return g, nil
}

// firstUDC is the first USB device controller's name.
func firstUDC(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("gadget: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", fmt.Errorf("gadget: no USB device controller in %s: on a Pi Zero 2 W, 4 or 5 add dtoverlay=dwc2 to /boot/firmware/config.txt and reboot (docs/INSTALL.md); boards without an OTG port (Pi 3) cannot be a USB gadget: set link.usb_gadget = false", dir)
	}
	return names[0], nil
}

func (g *Gadget) build(c Config) error {
	fn := filepath.Join(g.dir, "functions", function)
	cfg := filepath.Join(g.dir, "configs", "c.1")
	steps := []struct {
		path, value string // value "" with a path: a directory
	}{
		{g.dir, ""},
		{filepath.Join(g.dir, "idVendor"), fmt.Sprintf("0x%04x", VendorID)},
		{filepath.Join(g.dir, "idProduct"), fmt.Sprintf("0x%04x", ProductID)},
		{filepath.Join(g.dir, "bcdDevice"), "0x0100"},
		{filepath.Join(g.dir, "bcdUSB"), "0x0200"},
		// Miscellaneous / common class / interface association: the NCM
		// function comes with an IAD, which Windows wants announced.
		{filepath.Join(g.dir, "bDeviceClass"), "0xef"},
		{filepath.Join(g.dir, "bDeviceSubClass"), "0x02"},
		{filepath.Join(g.dir, "bDeviceProtocol"), "0x01"},
		{filepath.Join(g.dir, "strings", "0x409"), ""},
		{filepath.Join(g.dir, "strings", "0x409", "manufacturer"), "Attune"},
		{filepath.Join(g.dir, "strings", "0x409", "product"), strings.TrimSpace("Attune recorder " + c.Version)},
		{filepath.Join(g.dir, "strings", "0x409", "serialnumber"), serial(c.ID)},
		{fn, ""},
		{filepath.Join(fn, "host_addr"), g.HostMAC.String()},
		{filepath.Join(fn, "dev_addr"), g.DeviceMAC.String()},
		{cfg, ""},
		{filepath.Join(cfg, "MaxPower"), "250"},
		{filepath.Join(cfg, "bmAttributes"), "0x80"},
		{filepath.Join(cfg, "strings", "0x409"), ""},
		{filepath.Join(cfg, "strings", "0x409", "configuration"), "NCM network"},
	}
	for _, s := range steps {
		var err error
		if s.value == "" {
			err = mkdir(s.path)
		} else {
			err = os.WriteFile(s.path, []byte(s.value+"\n"), 0o644)
		}
		if err != nil {
			return fmt.Errorf("gadget: %v", err)
		}
	}
	// Windows 10 binds its NCM driver (UsbNcm) by the Microsoft OS
	// descriptor's compatible id WINNCM; newer kernels offer it.
	if osd := filepath.Join(fn, "os_desc", "interface.ncm"); isDir(osd) {
		for _, s := range [][2]string{
			{filepath.Join(osd, "compatible_id"), "WINNCM"},
			{filepath.Join(g.dir, "os_desc", "b_vendor_code"), "0xcd"},
			{filepath.Join(g.dir, "os_desc", "qw_sign"), "MSFT100"},
			{filepath.Join(g.dir, "os_desc", "use"), "1"},
		} {
			if err := os.WriteFile(s[0], []byte(s[1]+"\n"), 0o644); err != nil {
				return fmt.Errorf("gadget: %v", err)
			}
		}
		if err := os.Symlink(cfg, filepath.Join(g.dir, "os_desc", "c.1")); err != nil {
			return fmt.Errorf("gadget: %v", err)
		}
	}
	if err := os.Symlink(fn, filepath.Join(cfg, function)); err != nil {
		return fmt.Errorf("gadget: %v", err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, "UDC"), []byte(g.UDC+"\n"), 0o644); err != nil {
		return fmt.Errorf("gadget: bind to %s: %v; is another gadget (g_ether, g_serial) using it? (lsmod)", g.UDC, err)
	}
	return nil
}

// mkdir makes a configfs item; configfs makes some (strings, functions,
// configs, os_desc) by itself, so one that is there is fine.
func mkdir(p string) error {
	if err := os.MkdirAll(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Ifname is the device's end of the link as the kernel named it (usually
// usb0), read from the bound NCM function.
func (g *Gadget) Ifname() (string, error) {
	b, err := os.ReadFile(filepath.Join(g.dir, "functions", function, "ifname"))
	if err != nil {
		return "", fmt.Errorf("gadget: interface name: %v", err)
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, " ()/") {
		return "", fmt.Errorf("gadget: interface name %q: the NCM function is not bound", name)
	}
	return name, nil
}

// Remove unbinds the gadget and removes it from configfs, in the reverse
// order of making it. What is already gone is skipped.
func (g *Gadget) Remove() error {
	fn := filepath.Join(g.dir, "functions", function)
	cfg := filepath.Join(g.dir, "configs", "c.1")
	var errs []error
	if udc := filepath.Join(g.dir, "UDC"); exists(udc) {
		if b, _ := os.ReadFile(udc); strings.TrimSpace(string(b)) != "" {
			if err := os.WriteFile(udc, []byte("\n"), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("unbind: %v", err))
			}
		}
	}
	for _, link := range []string{filepath.Join(cfg, function), filepath.Join(g.dir, "os_desc", "c.1")} {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, dir := range []string{
		filepath.Join(cfg, "strings", "0x409"),
		cfg,
		fn,
		filepath.Join(g.dir, "strings", "0x409"),
		g.dir,
	} {
		if err := g.rmdir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("rmdir %s: %v", dir, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gadget: remove: %w", err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
