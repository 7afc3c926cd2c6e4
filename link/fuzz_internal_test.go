package link

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"testing"
	"testing/iotest"

	"filippo.io/age"

	"attune.dev/attune/custody"
)

// FuzzContentRange fuzzes the client's parser of the device's
// Content-Range header (the server side is http.ServeContent).
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1000", "bytes */1000", "bytes 5-5/6", "bytes 6-5/6", "bytes 0-6/6",
		"bytes -1-5/6", "bytes 0-5/*", "bytes 1-2", "items 0-1/2", "bytes 00-1/2", "bytes 0-9223372036854775807/9223372036854775807", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, size, err := parseContentRange(s)
		if err != nil {
			return
		}
		if size < 0 {
			t.Fatalf("%q: size %d", s, size)
		}
		if first == -1 && last == -1 {
			return
		}
		if first < 0 || first > last || last >= size {
			t.Fatalf("%q: %d-%d/%d accepted", s, first, last, size)
		}
	})
}

// FuzzPairReply fuzzes the laptop's parsers of the device's pairing
// answers and checks that no input passes verification without the key.
func FuzzPairReply(f *testing.F) {
	f.Add([]byte(`{"session":"AAAAAAAAAAAAAAAAAAAAAA==","msg_b":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`),
		[]byte(`{"confirm":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","sealed":"AAAAAAAAAAAAAAAAAAAAAA=="}`),
		[]byte(`{"device_cert_pin":"`+string(bytes.Repeat([]byte("ab"), 32))+`","device_id":"d","clock_set":true}`))
	f.Add([]byte(`{}`), []byte(`null`), []byte(`{"device_cert_pin":"","device_id":"\u0000"}`))
	f.Fuzz(func(t *testing.T, start, finish, device []byte) {
		for _, one := range []bool{false, true} {
			wrap := func(b []byte) io.Reader {
				if one {
					return iotest.OneByteReader(bytes.NewReader(b))
				}
				return bytes.NewReader(b)
			}
			if sr, err := parseStartResponse(wrap(start)); err == nil && (len(sr.Session) != sessionSize || len(sr.MsgB) != msgBSize) {
				t.Fatalf("start answer %q accepted", start)
			}
			fin, err := parseFinishResponse(wrap(finish))
			if err == nil {
				if len(fin.Confirm) != confirmSize {
					t.Fatalf("finish answer %q accepted", finish)
				}
				key := make([]byte, 32)
				rand.Read(key)
				k := deriveKeys(key, make([]byte, 32))
				if _, err := verifyDevice(k, finishRequest{Confirm: make([]byte, 32), Sealed: make([]byte, 16)}, fin, "00"); err == nil {
					t.Fatal("a fuzzed answer passed verification")
				}
			}
			if d, err := parseDevicePayload(device); err == nil && (!custody.ValidPin(d.DeviceCertPin) || !validText(d.DeviceID, 128)) {
				t.Fatalf("device payload %q accepted", device)
			}
		}
	})
}

// FuzzLaptopPayload fuzzes the device's parser of the laptop's decrypted
// payload.
func FuzzLaptopPayload(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	hy, _ := age.GenerateHybridIdentity()
	pin := string(bytes.Repeat([]byte("0f"), 32))
	for _, w := range []laptopWire{
		{LaptopCertPin: pin, Recipients: []string{id.Recipient().String()}, CaseRef: "c", Now: "2026-03-01T10:00:00Z"},
		{LaptopCertPin: pin, Recipients: []string{hy.Recipient().String()}, Now: "2026-03-01T10:00:00.5+01:00"},
		{LaptopCertPin: pin, Recipients: []string{id.Recipient().String(), hy.Recipient().String()}, Now: "2026-03-01T10:00:00Z"},
		{LaptopCertPin: pin, Recipients: []string{"#" + id.Recipient().String()}, Now: "x"},
	} {
		b, _ := json.Marshal(w)
		f.Add(b)
	}
	f.Add([]byte(`{"laptop_cert_pin":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseLaptopPayload(b)
		if err != nil {
			return
		}
		if !custody.ValidPin(p.LaptopPin) || len(p.Case.Recipients) == 0 || len(p.Case.Recipients) > MaxRecipients ||
			len(p.Case.Parsed.List) != len(p.Case.Recipients) || p.Case.Parsed.Kind == "" || p.Now.IsZero() || !validText(p.Case.Ref, maxCaseRef) {
			t.Fatalf("payload %q accepted as %+v", b, p)
		}
	})
}
