package link_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"attune.dev/attune/link"
)

// serveTCP runs the device's server on a loopback TCP port.
func (e *env) serveTCP() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestCurl checks the curl commands of docs/API.md against a server on a
// real TCP port: the laptop's key and certificate as PEM files, the
// device pinned with --pinnedpubkey (or trusted with --cacert).
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	e := newEnv(t)
	addr := e.serveTCP()
	_, port, _ := net.SplitHostPort(addr)
	ix := e.recording([]byte("the first second"), []byte("the next second"))
	e.b.SetLaptopPin(e.laptopPin)

	dir := t.TempDir()
	keyPEM, err := link.KeyPEM(e.laptop.PrivateKey.(ed25519.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := write("laptop.key", keyPEM)
	crt := write("laptop.crt", link.CertPEM(e.laptop))
	devCert, err := e.srv.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	devCrt := write("device.crt", link.CertPEM(devCert))
	pin, err := link.CurlPin(e.devPin)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + addr

	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(curl, append([]string{"-sS", "--max-time", "10"}, args...)...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out.String(), err
	}
	auth := []string{"--cert", crt, "--key", key, "-k", "--pinnedpubkey", pin}

	// Status.
	out, err := run(append(auth, "--fail-with-body", base+"/api/v1/status")...)
	if err != nil {
		t.Fatalf("curl status: %v", err)
	}
	var st link.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.DeviceID == "" {
		t.Fatalf("curl status: %q %v", out, err)
	}
	// A byte range of a segment.
	seg, _ := os.ReadFile(e.b.Storage().SegmentPath(ix.ID, 1))
	out, err = run(append(auth, "--fail-with-body", "-r", "10-109", fmt.Sprintf("%s/api/v1/recordings/%s/segments/1", base, ix.ID))...)
	if err != nil || out != string(seg[10:110]) {
		t.Fatalf("curl range: %d bytes, %v", len(out), err)
	}
	// Resume with -C -: curl asks for the bytes after what the file holds.
	part := write("000001.age", seg[:37])
	if _, err := run(append(auth, "--fail-with-body", "-C", "-", "-o", part, fmt.Sprintf("%s/api/v1/recordings/%s/segments/1", base, ix.ID))...); err != nil {
		t.Fatalf("curl -C -: %v", err)
	}
	if got, _ := os.ReadFile(part); !bytes.Equal(got, seg) {
		t.Fatalf("curl -C - left %d bytes, want the %d of the segment", len(got), len(seg))
	}
	// The hex pin converted as docs/API.md says.
	if _, err := exec.LookPath("xxd"); err == nil {
		out, err := exec.Command("sh", "-c", `echo "sha256//$(echo "$1" | xxd -r -p | base64)"`, "sh", e.devPin).Output()
		if err != nil || strings.TrimSpace(string(out)) != pin {
			t.Errorf("shell pin conversion: %q %v, want %s", out, err, pin)
		}
	}
	// Acknowledge.
	out, err = run(append(auth, "--fail-with-body", "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"segments":[0]}`, fmt.Sprintf("%s/api/v1/recordings/%s/ack", base, ix.ID))...)
	if err != nil || !strings.Contains(out, `"acked":true`) {
		t.Fatalf("curl ack: %q %v", out, err)
	}
	if _, err := os.Stat(e.b.Storage().SegmentPath(ix.ID, 0)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("segment 0 still on disk after curl ack: %v", err)
	}
	// --cacert instead of -k: the certificate names itself, so connect to
	// that name.
	out, err = run("--cert", crt, "--key", key, "--cacert", devCrt, "--connect-to", "attune-test:"+port+":127.0.0.1:"+port,
		"--fail-with-body", "https://attune-test:"+port+"/api/v1/status")
	if err != nil || !strings.Contains(out, st.DeviceID) {
		t.Errorf("curl --cacert: %q %v", out, err)
	}

	// The wrong pin: curl refuses (exit 90) before sending anything.
	_, otherPin := newCert(t, "impostor")
	wrong, _ := link.CurlPin(otherPin)
	_, err = run("--cert", crt, "--key", key, "-k", "--pinnedpubkey", wrong, "-X", "POST", "-d", `{"segments":[1],"manifest":true}`,
		fmt.Sprintf("%s/api/v1/recordings/%s/ack", base, ix.ID))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 90 {
		t.Errorf("curl with the wrong pin: %v, want exit status 90", err)
	}
	// No client certificate, or another one: 403 with an empty body.
	other, _ := newCert(t, "other")
	okey, _ := link.KeyPEM(other.PrivateKey.(ed25519.PrivateKey))
	okeyPath := write("other.key", okey)
	ocrt := write("other.crt", link.CertPEM(other))
	for name, args := range map[string][]string{
		"no certificate":      {"-k", "--pinnedpubkey", pin},
		"another certificate": {"--cert", ocrt, "--key", okeyPath, "-k", "--pinnedpubkey", pin},
	} {
		out, err := run(append(args, "-w", "%{http_code}", fmt.Sprintf("%s/api/v1/recordings/%s/segments/1", base, ix.ID))...)
		if err != nil || out != "403" {
			t.Errorf("curl with %s: %q %v, want 403 and nothing else", name, out, err)
		}
	}
	if now, _ := e.b.Storage().Index(ix.ID); now.Segments[1].Acked {
		t.Error("segment 1 acknowledged by a refused request")
	}
}
