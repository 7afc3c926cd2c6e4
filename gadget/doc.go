// Package gadget turns the device's USB OTG port (Raspberry Pi Zero 2 W,
// 4, 5 with dtoverlay=dwc2) into the USB link to the laptop: a USB
// network adapter the laptop's own class driver runs (NCM: Windows 10
// 2004+, Windows 11, macOS and Linux need no driver install), a fixed
// address on the device's end, and a DHCP server that gives the laptop's
// end its one address, with no router and no DNS server, so the laptop
// never sends its internet traffic to the device.
//
// Configfs builds the gadget (libcomposite, usb_f_ncm) under the given
// configfs root, so the tests run it against a temporary directory that
// stands in for configfs; make hil runs it on the kernel's dummy_hcd,
// whose host side is the laptop. The MAC addresses of both ends are
// derived from a stable id (the machine id: the device key changes at a
// factory reset, and a laptop would see a new network adapter every time).
//
// It is device code: run as root by `attuned gadget` (the
// attune-gadget.service unit), never by the daemon, which keeps only its
// two capabilities. It must never be imported by the laptop side.
package gadget
