package link_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"testing/iotest"

	"filippo.io/age"

	"attune.dev/attune/link"
	"attune.dev/attune/link/linktest"
	"attune.dev/attune/storage"
)

// serveRaw runs one request through the handler as if it came over TLS,
// presenting peer (nil: no client certificate).
func serveRaw(h http.Handler, method, target string, body io.Reader, peer *x509.Certificate) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://device.test", body)
	u, _ := url.Parse(target)
	req.URL.Path, req.URL.RawPath, req.RequestURI = u.Path, u.RawPath, u.RequestURI()
	if peer != nil {
		req.TLS.PeerCertificates = []*x509.Certificate{peer}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func FuzzPairStart(f *testing.F) {
	b, err := linktest.NewBackend(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	key := newKey(f)
	b.OpenWindow("123456")
	for _, s := range []string{
		`{"msg_a":"AAAAAAAAAAAAAAAAAAAAAOLyrgpqvE5xqISpYcUAUV9Y4wtqpYLdjbamWUXgjS12"}`,
		`{"msg_a":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"msg_a":""}`, `{"msg_a":null}`, `{}`, `[]`, `null`, ``, `{"msg_a":"AA=="} x`,
		`{"msg_a":"AAAA","msg_a":"BBBB"}`, `{"MSG_A":"AAAA"}`, `{"msg_a":"AAAA","x":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var codes [2]int
		for i, r := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body))} {
			srv := &link.Server{Backend: b, Key: key}
			rec := serveRaw(srv.Handler(), "POST", "/pair/start", r, nil)
			codes[i] = rec.Code
			switch rec.Code {
			case http.StatusOK:
				var sr struct {
					Session []byte `json:"session"`
					MsgB    []byte `json:"msg_b"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &sr); err != nil || len(sr.Session) != 16 || len(sr.MsgB) != 32 {
					t.Fatalf("200 with body %q", rec.Body)
				}
				var in struct {
					MsgA []byte `json:"msg_a"`
				}
				if err := json.Unmarshal(body, &in); err != nil || len(in.MsgA) != 48 {
					t.Fatalf("200 for a body without a 48-byte msg_a: %q", body)
				}
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("%d with body %q", rec.Code, rec.Body)
				}
			default:
				t.Fatalf("status %d for %q", rec.Code, body)
			}
		}
		if codes[0] != codes[1] {
			t.Fatalf("whole body %d, byte by byte %d", codes[0], codes[1])
		}
	})
}

func FuzzPairFinish(f *testing.F) {
	b, err := linktest.NewBackend(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	key := newKey(f)
	b.OpenWindow("123456")
	f.Add([]byte(`{"session":"AAAAAAAAAAAAAAAAAAAAAA==","confirm":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","sealed":"AAAAAAAAAAAAAAAAAAAAAA=="}`), []byte{}, []byte{}, uint8(0))
	f.Add([]byte(`{}`), make([]byte, 32), make([]byte, 16), uint8(1))
	f.Add([]byte(`{"session":null}`), make([]byte, 31), make([]byte, 100), uint8(1))
	f.Add([]byte(`{"session":"`), make([]byte, 32), make([]byte, 49<<10), uint8(3))
	f.Fuzz(func(t *testing.T, raw, confirm, sealed []byte, mode uint8) {
		srv := &link.Server{Backend: b, Key: key}
		h := srv.Handler()
		start := serveRaw(h, "POST", "/pair/start", bytes.NewReader([]byte(`{"msg_a":"AAAAAAAAAAAAAAAAAAAAAOLyrgpqvE5xqISpYcUAUV9Y4wtqpYLdjbamWUXgjS12"}`)), nil)
		if start.Code != http.StatusOK {
			t.Fatalf("start: %d %s", start.Code, start.Body)
		}
		var sr struct{ Session []byte }
		json.Unmarshal(start.Body.Bytes(), &sr)
		body := raw
		if mode&1 == 1 {
			body, _ = json.Marshal(map[string][]byte{"session": sr.Session, "confirm": confirm, "sealed": sealed})
		}
		var r io.Reader = bytes.NewReader(body)
		if mode&2 == 2 {
			r = iotest.OneByteReader(r)
		}
		rec := serveRaw(h, "POST", "/pair/finish", r, nil)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("finish: status %d %s", rec.Code, rec.Body)
		}
		if b.LaptopPin() != "" || b.Pairings() != 0 {
			t.Fatal("paired from fuzzed input")
		}
	})
}

func FuzzAPIRequest(f *testing.F) {
	dir := f.TempDir()
	b, err := linktest.NewBackend(dir)
	if err != nil {
		f.Fatal(err)
	}
	laptop, pin := newCert(f, "laptop")
	b.SetLaptopPin(pin)
	srv := &link.Server{Backend: b, Key: newKey(f)}
	h := srv.Handler()
	id, _ := age.GenerateX25519Identity()
	rs, _ := storage.NewRecipients([]age.Recipient{id.Recipient()})
	record := func() string {
		ix, err := linktest.Record(b.Storage(), rs, []byte("zero"), []byte("one"))
		if err != nil {
			f.Fatal(err)
		}
		return ix.ID
	}
	rid := record()
	state := func() string {
		list, _ := b.Storage().List()
		_, trusted := b.Wall()
		c := b.Case()
		s, _ := json.Marshal([]any{list, trusted, c.Recipients, c.Ref})
		return string(s)
	}
	r := id.Recipient().String()
	for _, s := range []struct {
		sel       uint8
		tail      string
		body      string
		recording bool
	}{
		{0, "", `{"segments":[0],"manifest":false}`, true},
		{0, "", `{"segments":[5]}`, true},
		{0, "0123456789abcdef", `{"segments":[0]}`, false},
		{1, "", `{"now":"2026-06-01T10:00:00Z"}`, false},
		{1, "", `{"now":"2026-06-01T10:00:00.123456789+02:00"}`, false},
		{2, "", `{"recipients":["` + r + `"],"case_ref":"c-1"}`, false},
		{2, "", `{"recipients":["` + r + `","` + r + `"]}`, false},
		{3, "/segments/0", ``, true},
		{3, "/segments/00", ``, true},
		{3, "/manifest", ``, true},
		{3, "", ``, true},
	} {
		f.Add(s.sel, s.tail, []byte(s.body), s.recording)
	}
	f.Fuzz(func(t *testing.T, sel uint8, tail string, body []byte, useRecording bool) {
		if list, _ := b.Storage().List(); len(list) == 0 {
			rid = record()
		}
		prefix := "/api/v1/recordings/"
		if useRecording {
			prefix += rid
		}
		var method, path string
		switch sel % 4 {
		case 0:
			method, path = "POST", prefix+tail+"/ack"
		case 1:
			method, path = "PUT", "/api/v1/clock"
		case 2:
			method, path = "PUT", "/api/v1/recipients"
		case 3:
			method, path = "GET", prefix+tail
		}
		u, err := url.Parse(path)
		if err != nil || u.Path != path || u.RawQuery != "" || u.Fragment != "" {
			return
		}
		before := state()
		rec := serveRaw(h, method, path, bytes.NewReader(body), laptop.Leaf)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			if after := state(); after != before {
				t.Fatalf("%s %s %q: %d, yet state changed", method, path, body, rec.Code)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d with body %q", rec.Code, rec.Body)
			}
		}
	})
}
