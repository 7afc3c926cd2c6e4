package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/brutella/dnssd"
)

// ServiceType is the DNS-SD service type devices announce.
const ServiceType = "_attune._tcp"

// txtVersion is the TXT record devices announce: the API version only.
// Nothing about the case, the practitioner or the family goes here.
var txtVersion = map[string]string{"v": "1"}

// Announce announces the device as name (an opaque device name, never
// personal data) on port over multicast DNS, on the named network
// interfaces only (e.g. "usb0", "wlan0"), until ctx is done. Interfaces
// that come up later are announced when they do. It returns nil when ctx
// ends.
//
// The dnssd library leaves a few of its goroutines (announcement repeats)
// running for up to a second after Announce returns.
func Announce(ctx context.Context, name string, port int, ifaces []string) error {
	if len(ifaces) == 0 {
		return errors.New("announce: no network interfaces configured; name the link's interfaces (e.g. usb0)")
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("announce: bad port %d", port)
	}
	svc, err := dnssd.NewService(dnssd.Config{
		Name:   name,
		Type:   ServiceType,
		Port:   port,
		Ifaces: ifaces,
		Text:   txtVersion,
	})
	if err != nil {
		return fmt.Errorf("announce: %v", err)
	}
	rp, err := dnssd.NewResponder()
	if err != nil {
		return fmt.Errorf("announce: %v", err)
	}
	if _, err := rp.Add(svc); err != nil {
		return fmt.Errorf("announce: %v", err)
	}
	err = rp.Respond(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("announce: %v", err)
}

// Found is a device found by Browse.
type Found struct {
	// Name is the announced instance name.
	Name string
	// Host is the device's host name (without the .local. suffix).
	Host string
	Port int
	// IPs are the addresses the device announced on Iface.
	IPs   []net.IP
	Iface string
}

// Addr returns host:port for the first address, preferring IPv4, with the
// zone for an IPv6 link-local address; "" if there is none.
func (f Found) Addr() string {
	var v6 net.IP
	for _, ip := range f.IPs {
		if ip.To4() != nil {
			return net.JoinHostPort(ip.String(), strconv.Itoa(f.Port))
		}
		if v6 == nil {
			v6 = ip
		}
	}
	if v6 == nil {
		return ""
	}
	host := v6.String()
	if v6.IsLinkLocalUnicast() && f.Iface != "" {
		host += "%" + f.Iface
	}
	return net.JoinHostPort(host, strconv.Itoa(f.Port))
}

// Browse looks for devices on every multicast interface for timeout and
// returns what it found, sorted by name and interface. An error means
// browsing was impossible (no multicast socket) or ctx ended.
func Browse(ctx context.Context, timeout time.Duration) ([]Found, error) {
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu    sync.Mutex
		found = map[string]Found{}
	)
	add := func(e dnssd.BrowseEntry) {
		mu.Lock()
		defer mu.Unlock()
		found[e.Name+"\x00"+e.IfaceName] = Found{
			// Anyone on the network may announce: never print it raw.
			Name:  sanitize(e.Name, 64),
			Host:  e.Host,
			Port:  e.Port,
			IPs:   append([]net.IP(nil), e.IPs...),
			Iface: e.IfaceName,
		}
	}
	rmv := func(e dnssd.BrowseEntry) {
		mu.Lock()
		defer mu.Unlock()
		delete(found, e.Name+"\x00"+e.IfaceName)
	}
	err := dnssd.LookupType(bctx, ServiceType+".local.", add, rmv)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("browse: %w", ctx.Err())
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("browse: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Found, 0, len(found))
	for _, f := range found {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Iface < out[j].Iface
	})
	return out, nil
}
