//go:build linux

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// servers are the stock sshd and nginx, on loopback, serving the
// pristine recording directory.
type servers struct {
	sshd, nginx *bgProc
	sshPort     int
	sshUser     string
	sshKey      string   // the client's private key
	sshOpts     []string // client options: port, key, no host key checks
	sshCipher   string   // as negotiated, from ssh -v
	nginxPort   int
	nginxCA     string // the self-signed certificate, for curl --cacert
	nginxTLS    string // protocol / cipher as negotiated, from curl -v
}

// startServers starts sshd and nginx; started is called with each so the
// caller can stop it whatever happens next.
func startServers(ctx context.Context, c config, runDir, pristine string, started func(*bgProc)) (*servers, error) {
	s := &servers{}
	if err := s.startSSHD(ctx, c, filepath.Join(runDir, "sshd"), started); err != nil {
		return nil, err
	}
	if err := s.startNginx(ctx, c, filepath.Join(runDir, "nginx"), filepath.Dir(pristine), started); err != nil {
		return nil, err
	}
	return s, nil
}

// startSSHD runs `sshd -D -f CONFIG -p PORT` with a fresh host key,
// public-key login for a fresh client key only, Debian's SFTP server, and
// OpenSSH's default ciphers.
func (s *servers) startSSHD(ctx context.Context, c config, dir string, started func(*bgProc)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// sshd's privilege separation directory; Debian's service unit makes it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return fmt.Errorf("sshd: /run/sshd: %v", err)
	}
	hostKey, clientKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "client_key")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.CommandContext(ctx, c.sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "benchsync", "-f", k).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return err
	}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, pub, 0o600); err != nil {
		return err
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	s.sshUser = u.Username
	cfg := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp %s
`, hostKey, auth, c.sftpServer)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return err
	}
	if s.sshPort, err = freePort(); err != nil {
		return err
	}
	port := strconv.Itoa(s.sshPort)
	if out, err := exec.CommandContext(ctx, c.sshd, "-t", "-f", cfg, "-p", port).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t: %v: %s", err, strings.TrimSpace(string(out)))
	}
	p, err := startProc("sshd", c.sshd, "-D", "-e", "-f", cfg, "-p", port)
	if err != nil {
		return err
	}
	started(p)
	s.sshd = p
	if err := p.waitListening(ctx, net.JoinHostPort("127.0.0.1", port)); err != nil {
		return err
	}
	s.sshKey = clientKey
	s.sshOpts = []string{"-i", clientKey, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	// One login to check it works and to learn the cipher negotiated.
	args := append([]string{"-v", "-p", port}, s.sshOpts...)
	args = append(args, s.sshUser+"@127.0.0.1", "true")
	out, err := exec.CommandContext(ctx, c.ssh, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh to our sshd: %v: %s\nsshd's log:\n%s", err, lastLines(string(out), 15), p.log.String())
	}
	if m := regexp.MustCompile(`kex: server->client cipher: (\S+) MAC: (\S+)`).FindStringSubmatch(string(out)); m != nil {
		s.sshCipher = m[1]
		if m[2] != "<implicit>" {
			s.sshCipher += " + " + m[2]
		}
	}
	return nil
}

// startNginx runs nginx in the foreground (`daemon off`, one process) on a
// loopback port with TLS 1.3 only, a fresh self-signed ECDSA P-256
// certificate and otherwise stock settings (sendfile is off by default,
// and without kernel TLS it could not apply to TLS anyway), serving root.
func (s *servers) startNginx(ctx context.Context, c config, dir, root string, started func(*bgProc)) error {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return err
	}
	crt, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := selfSigned(crt, key); err != nil {
		return err
	}
	var err error
	if s.nginxPort, err = freePort(); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "tmp")
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s;
    proxy_temp_path %[2]s;
    fastcgi_temp_path %[2]s;
    uwsgi_temp_path %[2]s;
    scgi_temp_path %[2]s;
    default_type application/octet-stream;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:%[3]d ssl;
        ssl_protocols TLSv1.3;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        root %[6]s;
    }
}
`, dir, tmp, s.nginxPort, crt, key, root)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return err
	}
	args := []string{"-c", cfg, "-p", dir + "/", "-e", filepath.Join(dir, "error.log")}
	if out, err := exec.CommandContext(ctx, c.nginx, append(args, "-t")...).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -t: %v: %s", err, strings.TrimSpace(string(out)))
	}
	p, err := startProc("nginx", c.nginx, args...)
	if err != nil {
		return err
	}
	started(p)
	s.nginx = p
	if err := p.waitListening(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.nginxPort))); err != nil {
		if b, rerr := os.ReadFile(filepath.Join(dir, "error.log")); rerr == nil {
			err = fmt.Errorf("%v\nerror.log:\n%s", err, b)
		}
		return err
	}
	s.nginxCA = crt
	// One request to check it works and to learn the TLS cipher.
	out, err := exec.CommandContext(ctx, c.curl, "-sS", "-v", "--fail", "--tlsv1.3", "--cacert", crt, "-o", "/dev/null",
		fmt.Sprintf("https://127.0.0.1:%d/", s.nginxPort)).CombinedOutput()
	// The directory listing is off: 403 is the expected answer.
	if m := regexp.MustCompile(`SSL connection using (\S+) / (\S+)`).FindStringSubmatch(string(out)); m != nil {
		s.nginxTLS = m[1] + " " + m[2]
	} else {
		return fmt.Errorf("curl to our nginx: %v: %s", err, lastLines(string(out), 15))
	}
	return nil
}

// selfSigned writes a self-signed ECDSA P-256 certificate for 127.0.0.1.
func selfSigned(crtPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
