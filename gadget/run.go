package gadget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Run makes the USB link and keeps it until ctx is done: the gadget (Create),
// DeviceAddr on its interface, and the DHCP server giving the laptop its
// address, while it watches that a laptop that connects hears of the link
// (announcing it again if not: reannouncer); then it takes the gadget down
// again. It returns once all is
// undone. ready, if not nil, is called with the interface's name once the
// DHCP server is about to answer.
func Run(ctx context.Context, c Config, log *slog.Logger, ready func(ifname string)) (err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g, err := Create(c)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := g.Remove(); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			log.Info("usb link: gadget removed")
		}
	}()
	ifname, err := g.Ifname()
	if err != nil {
		return err
	}
	if err := SetAddress(ifname, DefaultLease.Server, 5*time.Second); err != nil {
		return err
	}
	log.Info("usb link: gadget up", "udc", g.UDC, "interface", ifname, "address", DefaultLease.Server,
		"laptop", DefaultLease.Client, "device_mac", g.DeviceMAC.String(), "laptop_mac", g.HostMAC.String())
	if ready != nil {
		ready(ifname)
	}
	wctx, stop := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); watchLink(wctx, ifname, log) }()
	defer func() { stop(); <-watched }()
	return ServeDHCP(ctx, ifname, DefaultLease, log)
}

// MachineID reads the machine id (systemd's /etc/machine-id): 32 hex
// digits, stable for the life of the installation.
func MachineID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("gadget: machine id: %v", err)
	}
	id := strings.TrimSpace(string(b))
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("gadget: machine id in %s is %q, not 32 hex digits (systemd-machine-id-setup makes one)", path, id)
	}
	return id, nil
}
