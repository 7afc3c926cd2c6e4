package system

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"

	"attune.dev/attune/gadget"
)

// MachineIDPath is systemd's machine id, from which the USB link's MAC
// addresses and serial number are derived (gadget.MachineID).
const MachineIDPath = "/etc/machine-id"

// USBLink is `attuned gadget`: when the configuration asks for it
// (link.usb_gadget), it makes the USB link with gadget.Run — the gadget
// on the first USB device controller, gadget.DeviceAddr on its interface,
// the DHCP server giving the laptop its address — until ctx is done or
// SIGTERM or SIGINT arrives, then takes the gadget down. systemd runs it
// as root in attune-gadget.service (configfs, the interface's address and
// port 67 need root, CAP_NET_ADMIN and CAP_NET_BIND_SERVICE), so that the
// daemon keeps only CAP_SYS_TIME and CAP_IPC_LOCK. Without
// link.usb_gadget it says so and returns nil.
func USBLink(ctx context.Context, cfg Config, version, machineIDPath string, log *slog.Logger) error {
	if !cfg.Link.USBGadget {
		log.Info("usb link: off (link.usb_gadget = false)")
		return nil
	}
	id, err := gadget.MachineID(machineIDPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer notify("STOPPING=1")
	return gadget.Run(ctx, gadget.Config{ID: id, Version: version}, log, func(string) { notify("READY=1") })
}
