package custody

import "fmt"

// ValidID reports whether id has the form of an opaque id: 16 lowercase
// hex digits. Recording ids, the laptop's case ids (which the device keeps
// as case references) and the laptop's device ids all have this form.
//
// Whatever names a file on the laptop after it came from a device (a device
// id becomes devices/<id>.json, a recording id vault/<case>/<id>/) must pass
// ValidID first: the device's own rules are the laptop's check, so no name
// from a device can climb out of the laptop's home.
func ValidID(id string) bool { return isHex(id, 16) }

// DeviceID is the id of the device whose certificate has pin (a valid
// pin: 64 lowercase hex digits): its first 16 hex digits, an id ValidID
// accepts. A device announces itself under it and writes it in its status
// and pairing answer.
func DeviceID(pin string) string { return pin[:16] }

// isHex64 reports whether s is 64 lowercase hex digits: a SHA-256 as
// records, certificates and pins write it.
func isHex64(s string) bool { return isHex(s, 64) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// CaseNumber is the short number by which a device shows the case it
// records to and the laptop lists it: "c" and three decimal digits taken
// from the case id ("c042"). It is "" for anything but a case id. It is not
// unique by itself: the laptop gives open cases ids whose numbers differ.
func CaseNumber(ref string) string {
	if !ValidID(ref) {
		return ""
	}
	var n uint32
	for i := 0; i < 8; i++ {
		c := ref[i]
		d := c - '0'
		if c >= 'a' {
			d = c - 'a' + 10
		}
		n = n<<4 | uint32(d)
	}
	return fmt.Sprintf("c%03d", n%1000)
}
