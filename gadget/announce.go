package gadget

import "time"

// The laptop end can miss the gadget's announcement that the link is up.
// f_ncm sends NETWORK_CONNECTION when the laptop selects the data
// interface; if the device's interface is already up, the notification
// waits in the gadget until the laptop's driver polls for it, which it
// does when its interface is opened. Linux's usbnet (6.1) starts that poll
// before it marks the interface open, and drops a link change that lands
// in between: the laptop's interface then stays up with no carrier and
// sends nothing, while the device's side has carrier and waits (seen in
// make hil-gadget: both ends' frame counters at 0, the laptop's usb1 UP
// but NO-CARRIER). Bringing the device's interface down and up again
// makes f_ncm announce the link once more, and that announcement reaches
// an interface that is open.
//
// reannouncer decides when: the link has carrier (a laptop chose the data
// interface) but nothing has arrived from the laptop for a while, which a
// laptop that saw the link never does (it asks for an address at once). It
// tries a few times per connection, waiting longer each time.
type reannouncer struct {
	quiet time.Duration // first wait with carrier and nothing received
	tries int           // at most this many per connection

	up      bool      // carrier seen
	since   time.Time // when carrier came, or the last announcement
	rx      uint64    // packets received then
	done    int       // announcements made in this connection
	waiting time.Duration
}

func newReannouncer() *reannouncer { return &reannouncer{quiet: 3 * time.Second, tries: 4} }

// step takes the interface's state at now; it says whether to announce
// the link again (bring the interface down and up).
func (r *reannouncer) step(now time.Time, carrier bool, rx uint64) bool {
	if !carrier {
		r.up, r.done = false, 0 // unplugged, or not yet chosen: a new connection next
		return false
	}
	if !r.up {
		r.up, r.since, r.rx, r.waiting = true, now, rx, r.quiet
		return false
	}
	if rx != r.rx {
		r.done = r.tries // the laptop talks: nothing more to do in this connection
		return false
	}
	if r.done >= r.tries || now.Sub(r.since) < r.waiting {
		return false
	}
	r.done++
	r.since, r.waiting = now, 2*r.waiting
	return true
}
