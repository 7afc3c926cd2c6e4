//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"attune.dev/attune/internal/procstat"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The gadget scenario's laptop side lives in its own network namespace:
// both ends of dummy_hcd are in this one kernel, which would otherwise
// route 192.168.7.x to itself instead of over the USB link.

const (
	gadgetConfig = "/tmp/gadget.toml"
	laptopHome   = "/data/laptop"
	tcpPort      = 9100
)

// helper runs the guest binary's helper modes, used as child processes
// (never as PID 1): laptop-dhcp IFACE, tcp-recv ADDR. It reports whether
// os.Args named one.
func helper() bool {
	if os.Getpid() == 1 || len(os.Args) < 2 {
		return false
	}
	var err error
	switch os.Args[1] {
	case "laptop-dhcp":
		err = laptopDHCP(os.Args[2])
	case "tcp-recv":
		err = tcpRecv(os.Args[2])
	default:
		return false
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// laptopDHCP is the laptop's DHCP client on ifname: lo and ifname up,
// DISCOVER/OFFER/REQUEST/ACK with nclient4, the leased address set on
// ifname. It prints the lease as JSON.
func laptopDHCP(ifname string) error {
	for _, n := range []string{"lo", ifname} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
	}
	// The NCM link carries frames only once both ends are up: wait for
	// carrier (read with netlink: this namespace's interfaces are not in
	// the /sys mounted from the first one).
	t0 := time.Now()
	carrier := false
	for time.Since(t0) < 15*time.Second {
		if l, err := netlink.LinkByName(ifname); err == nil && l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 {
			carrier = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "laptop-dhcp: carrier %v after %.2fs\n", carrier, time.Since(t0).Seconds())
	if !carrier {
		// Frames to an interface without carrier are dropped before they
		// leave: DHCP cannot work, and retrying it only hides why.
		return fmt.Errorf("no carrier on %s after 15 s: the laptop's NCM end never saw the device's NETWORK_CONNECTION notification", ifname)
	}
	var lease *nclient4.Lease
	for attempt := 1; ; attempt++ {
		fmt.Fprintf(os.Stderr, "laptop-dhcp: attempt %d at %.2fs\n", attempt, time.Since(t0).Seconds())
		c, err := nclient4.New(ifname, nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(4))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		lease, err = c.Request(ctx)
		cancel()
		c.Close()
		if err == nil {
			break
		}
		if attempt == 3 {
			return err
		}
	}
	ack := lease.ACK
	l, _ := netlink.LinkByName(ifname)
	ipnet := &net.IPNet{IP: ack.YourIPAddr, Mask: ack.SubnetMask()}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipnet}); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"address": ipnet.String(), "server": ack.ServerIdentifier().String(),
		"offer": lease.Offer.MessageType().String(), "ack": ack.MessageType().String(),
		"lease":  ack.IPAddressLeaseTime(0).String(),
		"router": ack.Options.Has(dhcpv4.OptionRouter), "dns": ack.Options.Has(dhcpv4.OptionDomainNameServer),
	})
}

// tcpRecv connects to addr, reads to EOF and prints the bytes and seconds.
func tcpRecv(addr string) error {
	t := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		return err
	}
	fmt.Printf("%d %.6f\n", n, time.Since(t).Seconds())
	return nil
}

// hostIface waits for the host side of the gadget: the interface whose
// driver is cdc_ncm.
func hostIface(d time.Duration) (string, error) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		devs, _ := filepath.Glob("/sys/class/net/*/device/driver")
		for _, p := range devs {
			if t, err := os.Readlink(p); err == nil && filepath.Base(t) == "cdc_ncm" {
				return filepath.Base(filepath.Dir(filepath.Dir(p))), nil
			}
		}
	}
	return "", fmt.Errorf("no cdc_ncm interface after %v", d)
}

// netState is the network as both namespaces see it, for a failure's
// report: links with their flags and counters, addresses, the UDP and
// packet sockets, and the kernel's last messages.
func netState(nsPid int) string {
	var b strings.Builder
	for _, ns := range []struct {
		name string
		cmd  func(...string) *exec.Cmd
	}{
		{"device", func(argv ...string) *exec.Cmd { return exec.Command(argv[0], argv[1:]...) }},
		{"laptop", func(argv ...string) *exec.Cmd { return inLaptop(nsPid, argv...) }},
	} {
		for _, argv := range [][]string{
			{"/bin/busybox", "ip", "link"},
			{"/bin/busybox", "ip", "addr"},
			{"/bin/busybox", "cat", "/proc/net/dev", "/proc/net/udp", "/proc/net/packet"},
		} {
			out, err := ns.cmd(argv...).CombinedOutput()
			fmt.Fprintf(&b, "--- %s: %s (%v)\n%s", ns.name, strings.Join(argv[1:], " "), err, out)
		}
	}
	out, _ := exec.Command("/bin/busybox", "dmesg").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	fmt.Fprintf(&b, "--- dmesg (last %d lines)\n%s\n", len(lines), strings.Join(lines, "\n"))
	return b.String()
}

// inLaptop runs argv in the laptop's network namespace (busybox nsenter).
func inLaptop(nsPid int, argv ...string) *exec.Cmd {
	return exec.Command("/bin/busybox", append([]string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", nsPid)}, argv...)...)
}

type panelState struct {
	State string `json:"state"`
	Code  string `json:"code"`
}

func panelGet(panel string) (panelState, error) {
	var p panelState
	resp, err := http.Get("http://" + panel + "/api/panel")
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	return p, json.NewDecoder(resp.Body).Decode(&p)
}

func panelPress(panel, button string, ms int) error {
	b, _ := json.Marshal(map[string]any{"button": button, "ms": ms})
	resp, err := http.Post("http://"+panel+"/api/panel/press", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("press %s: %s", button, resp.Status)
	}
	return nil
}

func panelWait(panel, state string, d time.Duration) (panelState, error) {
	var p panelState
	var err error
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if p, err = panelGet(panel); err == nil && p.State == state {
			return p, nil
		}
	}
	return p, fmt.Errorf("panel shows %q (%v), not %s, after %v", p.State, err, state, d)
}

// dirBytes is the size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if i, err := d.Info(); err == nil {
				n += i.Size()
			}
		}
		return nil
	})
	return n
}

// gadgetScenario: `attuned gadget` makes the NCM gadget on dummy_udc, the
// host side (cdc_ncm) goes to the laptop's namespace and gets its address
// by DHCP from attuned; the laptop finds the device by DNS-SD, pairs with
// the code from the simulated panel, syncs a recording over the USB link,
// and a plain TCP transfer over the same link is the yardstick.
func gadgetScenario(r *Result) error {
	os.MkdirAll("/etc", 0o755)
	if err := os.WriteFile("/etc/machine-id", []byte("4a1e0c5d7b2f48e39c6d0a1b2c3d4e5f\n"), 0o444); err != nil {
		return err
	}
	cfg := `data = "/data/gadget"
recipients = "/hil/recipients.txt"
listen = ":8443"
panel = "127.0.0.1:8080"
[capture]
source = "testsrc"
audio = "none"
[link]
interfaces = ["usb0"]
usb_gadget = true
[system]
log_level = "info"
`
	if err := os.WriteFile(gadgetConfig, []byte(cfg), 0o644); err != nil {
		return err
	}
	os.MkdirAll("/data/gadget", 0o755)
	note := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		r.Notes = append(r.Notes, s)
		logf("gadget: %s", s)
	}

	// The USB link, as attune-gadget.service runs it.
	glog := new(syncBuffer)
	gcmd := exec.Command("/hil/attuned", "gadget", "--config", gadgetConfig)
	gcmd.Stdout, gcmd.Stderr = glog, glog
	if err := gcmd.Start(); err != nil {
		return err
	}
	gdone := make(chan error, 1)
	go func() { gdone <- gcmd.Wait() }()
	stopGadget := func() error {
		if gcmd.ProcessState != nil {
			return nil
		}
		gcmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-gdone:
			return err
		case <-time.After(15 * time.Second):
			gcmd.Process.Kill()
			return errors.New("attuned gadget did not end within 15 s of SIGTERM")
		}
	}
	defer stopGadget()
	fail := func(err error) error {
		return fmt.Errorf("%w\nattuned gadget log:\n%s", err, glog.String())
	}
	host, err := hostIface(30 * time.Second)
	if err != nil {
		return fail(err)
	}
	udc, _ := os.ReadFile("/sys/kernel/config/usb_gadget/attune/UDC")
	osDesc, _ := os.ReadFile("/sys/kernel/config/usb_gadget/attune/functions/ncm.usb0/os_desc/interface.ncm/compatible_id")
	hostMAC, _ := os.ReadFile("/sys/class/net/" + host + "/address")
	note("gadget bound to %s; host side %s (cdc_ncm, MAC %s); Windows compatible id %q",
		strings.TrimSpace(string(udc)), host, strings.TrimSpace(string(hostMAC)), strings.TrimRight(string(osDesc), "\x00\n"))

	// The laptop's namespace, held by a sleeping process.
	holder := exec.Command("/bin/busybox", "sleep", "100000")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := holder.Start(); err != nil {
		return fmt.Errorf("laptop namespace: %w", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	l, err := netlink.LinkByName(host)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetNsPid(l, holder.Process.Pid); err != nil {
		return fmt.Errorf("move %s to the laptop's namespace: %w", host, err)
	}
	dhcp := inLaptop(holder.Process.Pid, "/init", "laptop-dhcp", host)
	var dhcpErr bytes.Buffer
	dhcp.Stderr = &dhcpErr
	out, err := dhcp.Output()
	logf("gadget: %s", strings.TrimSpace(dhcpErr.String()))
	if err != nil {
		return fail(fmt.Errorf("laptop DHCP: %v: %s%s\n%s", err, out, dhcpErr.String(), netState(holder.Process.Pid)))
	}
	var lease struct {
		Address, Server, Offer, Ack, Lease string
		Router, DNS                        bool
	}
	if err := json.Unmarshal(out, &lease); err != nil {
		return fmt.Errorf("laptop DHCP said %q: %v", out, err)
	}
	note("laptop DHCP: %s %s from %s, lease %s, router %v, dns %v", lease.Offer, lease.Ack, lease.Server, lease.Lease, lease.Router, lease.DNS)
	if lease.Address != "192.168.7.2/24" || lease.Server != "192.168.7.1" || lease.Router || lease.DNS {
		return fail(fmt.Errorf("lease %+v, want 192.168.7.2/24 from 192.168.7.1, no router, no DNS", lease))
	}

	// The daemon, on the simulated board (its panel API gives the code,
	// on the device's loopback).
	if lo, err := netlink.LinkByName("lo"); err != nil || netlink.LinkSetUp(lo) != nil {
		return fmt.Errorf("lo up: %v", err)
	}
	d, err := startDaemonWith("sim", gadgetConfig)
	if err != nil {
		return fail(err)
	}
	defer d.stop()
	failD := func(err error) error {
		return fmt.Errorf("%w\nattuned run log:\n%s\nattuned gadget log:\n%s", err, d.log.String(), glog.String())
	}
	panel := "127.0.0.1:8080"
	if _, err := panelWait(panel, "ready", 30*time.Second); err != nil {
		return failD(err)
	}
	if err := panelPress(panel, "pair", 3100); err != nil {
		return failD(err)
	}
	p, err := panelWait(panel, "pairing", 15*time.Second)
	if err != nil {
		return failD(err)
	}
	var attuneCPU time.Duration // the last attune command's user and system time
	attune := func(args ...string) (string, error) {
		cmd := inLaptop(holder.Process.Pid, append([]string{"/hil/attune"}, args...)...)
		cmd.Env = append(os.Environ(), "ATTUNE_HOME="+laptopHome)
		b, err := cmd.CombinedOutput()
		if cmd.ProcessState != nil {
			attuneCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		return string(b), err
	}
	// No --device: found by DNS-SD over the USB link. The case key stays
	// unprotected: scrypt's passphrase work under TCG takes longer than
	// the scenario's budget (the passphrase path is tested on the host).
	out2, err := attune("pair", "--code", p.Code, "--case", "HIL family", "--no-passphrase")
	if err != nil || !strings.Contains(out2, "paired with device") || !strings.Contains(out2, "192.168.7.1:8443") {
		return failD(fmt.Errorf("attune pair (by DNS-SD): %v\n%s", err, out2))
	}
	note("attune pair found the device by DNS-SD at 192.168.7.1:8443 and paired")
	if _, err := panelWait(panel, "ready", 15*time.Second); err != nil {
		return failD(err)
	}
	if err := panelPress(panel, "rec", 100); err != nil {
		return failD(err)
	}
	if _, err := panelWait(panel, "recording", 15*time.Second); err != nil {
		return failD(err)
	}
	time.Sleep(10 * time.Second)
	if err := panelPress(panel, "rec", 100); err != nil {
		return failD(err)
	}
	if _, err := panelWait(panel, "ready", 30*time.Second); err != nil {
		return failD(err)
	}
	onDevice := dirBytes("/data/gadget/recordings")
	before := dirBytes(laptopHome)
	devCPU0, _ := procCPU(d.cmd.Process.Pid)
	busy0, total0, _ := procstat.Machine()
	t := time.Now()
	out3, err := attune("sync", "--json")
	syncSecs := time.Since(t).Seconds()
	devCPU1, _ := procCPU(d.cmd.Process.Pid)
	busy1, total1, _ := procstat.Machine()
	if err != nil || !strings.Contains(out3, `"event":"result"`) {
		return failD(fmt.Errorf("attune sync: %v\n%s", err, out3))
	}
	var res struct {
		Bytes      int64 `json:"bytes"`
		Recordings []struct {
			ID       string `json:"id"`
			Complete bool   `json:"complete"`
		} `json:"recordings"`
	}
	sc := bufio.NewScanner(strings.NewReader(out3))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"event":"result"`) {
			json.Unmarshal(sc.Bytes(), &res)
		}
	}
	if len(res.Recordings) != 1 || !res.Recordings[0].Complete {
		return failD(fmt.Errorf("attune sync: want one complete recording, got %+v\n%s", res, out3))
	}
	synced := dirBytes(laptopHome) - before
	if res.Bytes > 0 {
		synced = res.Bytes // what came over the link
	}
	syncRate := float64(synced) / syncSecs / 1e6
	note("attune sync over the USB link: recording complete and verified; %d bytes into the vault (%d on the device) in %.2f s: %.2f MB/s (the whole command: start, TLS, decrypt-verify, fsync)", synced, onDevice, syncSecs, syncRate)
	vmBusy := 0.0
	if total1 > total0 {
		vmBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	note("CPU during the sync: attune %.2f s, attuned %.2f s; the VM's %d CPUs %.0f%% busy", attuneCPU.Seconds(), (devCPU1 - devCPU0).Seconds(), runtime.NumCPU(), 100*vmBusy)

	// The yardstick: a plain TCP transfer of as many bytes, device to
	// laptop, over the same link.
	ln, err := net.Listen("tcp", fmt.Sprintf("192.168.7.1:%d", tcpPort))
	if err != nil {
		return failD(err)
	}
	defer ln.Close()
	size := synced
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for left := size; left > 0; {
			n := int64(len(buf))
			if left < n {
				n = left
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			left -= n
		}
	}()
	tcpOut, err := inLaptop(holder.Process.Pid, "/init", "tcp-recv", fmt.Sprintf("192.168.7.1:%d", tcpPort)).CombinedOutput()
	if err != nil {
		return failD(fmt.Errorf("tcp-recv: %v: %s", err, tcpOut))
	}
	var n int64
	var secs float64
	if _, err := fmt.Sscan(string(tcpOut), &n, &secs); err != nil || n != size {
		return failD(fmt.Errorf("tcp-recv said %q, want %d bytes", tcpOut, size))
	}
	tcpRate := float64(n) / secs / 1e6
	ratio := syncRate / tcpRate
	note("plain TCP over the USB link: %d bytes in %.2f s: %.2f MB/s; sync/TCP = %.2f× (goal 0.9×; TCG emulates every CPU instruction, and sync decrypts and hashes each byte)", n, secs, tcpRate, ratio)
	r.Extra = map[string]any{"sync_mbps": syncRate, "tcp_mbps": tcpRate, "ratio": ratio, "bytes": synced,
		"sync_attune_cpu_s": attuneCPU.Seconds(), "sync_attuned_cpu_s": (devCPU1 - devCPU0).Seconds(), "sync_vm_busy": vmBusy}

	if err := d.stop(); err != nil {
		return failD(err)
	}
	if err := stopGadget(); err != nil {
		return fail(fmt.Errorf("attuned gadget on SIGTERM: %v", err))
	}
	if _, err := os.Stat("/sys/kernel/config/usb_gadget/attune"); !errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("gadget still in configfs after attuned gadget ended: %v", err))
	}
	note("SIGTERM: attuned gadget removed the gadget from configfs and exited 0")
	// The laptop end can miss the link's first announcement (gadget.
	// reannouncer): say how often attuned announced it again.
	note("attuned announced the link again %d times (it does when the laptop sends nothing after it connected)",
		strings.Count(glog.String(), "announcing the link again"))
	return nil
}
