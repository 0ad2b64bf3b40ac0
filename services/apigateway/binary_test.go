package apigateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// TestBinary runs cmd/apigateway: invalid settings exit 2 naming file:line:col; a
// first start prints the generated admin password once; SIGTERM stops it cleanly.
func TestBinary(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/apigateway")
	bad, _ := sitetest.Write(t, sitetest.Merge(virtualSite, sitetest.Files{"apigateway/apigateway.yaml": "login:\n  max_failure: 3\n"}), "redis://127.0.0.1:1/0")
	cmd := exec.Command(bin, "--config", bad)
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "apigateway.yaml:2:3") {
		t.Fatalf("invalid settings: %v\n%s", err, out)
	}

	rds := testharness.StartRedis(t)
	dir, _ := sitetest.Write(t, virtualSite, rds.URL())
	cmd = exec.Command(bin, "--config", dir)
	cmd.Env = append(cmd.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0")
	p, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`apigateway running`), 30*time.Second)
	if !regexp.MustCompile(`user "admin" created with password [A-Z2-7]{26}`).MatchString(p.Logs()) {
		t.Fatalf("first start did not print the admin password:\n%s", p.Logs())
	}
	if err := p.Stop(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	site := sitetest.New(t, virtualSite)
	set := apigateway.DefaultSettings()
	set.TLS.CertFile, set.TLS.KeyFile = certFile, keyFile
	addr := make(chan net.Addr, 1)
	sitetest.Go(t, "apigateway", func(ctx context.Context) error {
		return apigateway.Run(ctx, apigateway.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), Settings: &set, AdminPassword: adminPassword, Out: io.Discard,
			Bound: func(a net.Addr) { addr <- a }})
	})
	var url string
	select {
	case a := <-addr:
		url = "https://" + a.String()
	case <-time.After(sitetest.StartTimeout):
		t.Fatal("the gateway did not bind")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(url + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("https: %d %v", resp.StatusCode, resp.Header)
	}
	// Plain HTTP to the TLS port is not served.
	if r, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/openapi.json"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
