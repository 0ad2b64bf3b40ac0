package netsrv_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/testharness"
)

// testPKI is a test CA with a server certificate for 127.0.0.1 and client
// certificates, written as PEM files.
type testPKI struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 1}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netsrv test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	p.ca, err = x509.ParseCertificate(der)
	must(t, err)
	p.caKey = key
	p.caFile = p.writePEM(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *testPKI) writePEM(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// issue makes a certificate signed by the CA and returns the cert and key files.
func (p *testPKI) issue(t testing.TB, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return p.writePEM(t, name+".pem", "CERTIFICATE", der), p.writePEM(t, name+".key", "EC PRIVATE KEY", kder)
}

// The AWS IoT profile against a Mosquitto that, like AWS IoT Core, requires a
// client certificate from its CA: netsrv logs in with the thing name as client id
// and publishes telemetry and the device shadow's reported state.
func TestAWSIoTMutualTLS(t *testing.T) {
	pki := newPKI(t)
	srvCert, srvKey := pki.issue(t, "broker", true)
	devCert, devKey := pki.issue(t, "site-thing", false)
	subCert, subKey := pki.issue(t, "subscriber", false)
	broker := testharness.StartMosquittoWith(t, testharness.MosquittoOptions{
		CAFile: pki.caFile, CertFile: srvCert, KeyFile: srvKey, RequireCertificate: true,
	})
	tlsArgs := []string{"--cafile", pki.caFile, "--cert", subCert, "--key", subKey}

	// The broker really refuses a client without a certificate.
	pub := testharness.Binary(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(broker.Addr)
	if out, err := exec.Command(pub, "-h", host, "-p", port, "--cafile", pki.caFile, "-t", "x", "-m", "x").CombinedOutput(); err == nil {
		t.Fatalf("a client without a certificate was accepted: %s", out)
	}

	sub := subscribe(t, broker.Addr, "#", append([]string{"-t", "$aws/#"}, tlsArgs...)...)
	sub.ready(broker.Addr, "dt/probe", tlsArgs...)
	s := newSite(t)
	s.links(fmt.Sprintf(`
links:
  - name: aws
    type: aws_iot
    broker: %s
    tls: {ca: %s, cert: %s, key: %s}
    aws: {thing: site-thing, shadow: true}
    topic: "dt/voltage/{{.Site}}/{{.Kind}}{{.Source}}"
    max_payload: 2048
`, broker.TLSURL(), pki.caFile, devCert, devKey))
	r := s.start()
	s.changes(3, 0, 100)

	waitValues(t, sub, "dt/voltage/test-site/channel3", "c3_T_1", 0, 100, 20*time.Second)
	for _, m := range sub.on("dt/voltage/") {
		if len(m.Payload) > 2048 {
			t.Errorf("message of %d bytes exceeds max_payload 2048", len(m.Payload))
		}
	}
	checkExactlyOnce(t, valueCounts(t, sub.on("dt/voltage/"), "c3_T_1"), 0, 100)
	testharness.Eventually(t, 10*time.Second, func() error {
		sh := sub.on("$aws/things/site-thing/shadow/update")
		if len(sh) == 0 {
			return fmt.Errorf("no shadow update")
		}
		var doc struct {
			State struct {
				Reported map[string]float64 `json:"reported"`
			} `json:"state"`
		}
		must(t, json.Unmarshal([]byte(sh[len(sh)-1].Payload), &doc))
		if v, ok := doc.State.Reported["c3_T_1"]; !ok || v != 99 {
			return fmt.Errorf("last shadow reports %v, want c3_T_1 = 99", doc.State.Reported)
		}
		return nil
	})
	if ls := r.linkStatus(t, "aws"); !ls.Connected {
		t.Errorf("status: %+v", ls)
	}
}
