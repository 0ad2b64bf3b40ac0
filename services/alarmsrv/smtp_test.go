package alarmsrv_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/shared/testharness"
)

// mailServer is an SMTP server on a loopback port that offers STARTTLS with a
// test certificate, requires AUTH PLAIN (only over TLS) and keeps the mail.
type mailServer struct {
	addr   string
	caFile string

	mu   sync.Mutex
	mail []mail
}

type mail struct {
	from string
	to   []string
	data string
	tls  bool
	user string
}

func startMailServer(t *testing.T) *mailServer {
	t.Helper()
	ms := &mailServer{}
	cert, caPEM := testCertificate(t)
	ms.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ms.caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	s := smtp.NewServer(ms)
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.AllowInsecureAuth = false
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = ln.Addr().String()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

func (ms *mailServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mailSession{ms: ms, conn: c}, nil
}

func (ms *mailServer) got() []mail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]mail(nil), ms.mail...)
}

type mailSession struct {
	ms   *mailServer
	conn *smtp.Conn
	cur  mail
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "alarms@site" || password != "pa55" {
			return errors.New("invalid credentials")
		}
		s.cur.user = username
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.cur.user == "" {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.cur.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.data = string(b)
	s.ms.mu.Lock()
	s.ms.mail = append(s.ms.mail, s.cur)
	s.ms.mu.Unlock()
	user := s.cur.user
	s.cur = mail{user: user}
	return nil
}

func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

// testCertificate makes a CA and a server certificate for 127.0.0.1.
func testCertificate(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// An alarm's notification goes out as e-mail: STARTTLS verified against the
// test CA, AUTH PLAIN, one message to every recipient. Routing by severity
// keeps a minor alarm off the channel.
func TestEmailNotificationOverSMTP(t *testing.T) {
	ms := startMailServer(t)
	host, port, _ := net.SplitHostPort(ms.addr)
	t.Setenv("TEST_SMTP_PASSWORD", "pa55")
	rules := fmt.Sprintf(`notifications:
  - name: mail
    type: email
    severities: [major, critical]
    smtp: {host: %s, port: %s, username: alarms@site, password_env: TEST_SMTP_PASSWORD, from: alarms@site, ca_file: %s}
    to: [oncall@site, boss@site]
alarms:
%s  - {id: volt, kind: limit, channel: 1, type: T, point: 3, limits: {h: {value: 250, severity: minor}}}
`, host, port, ms.caFile, tempRule)
	s := newStack(t, rules)
	s.start()
	s.write('T', pointSample(3, 260))
	s.waitEvents(alarmsrv.EventRaised, "volt:h", 1)
	s.temp(95)
	testharness.WaitFor(t, 30*time.Second, "the e-mail", func() bool { return len(ms.got()) >= 1 })
	m := ms.got()[0]
	if !m.tls || m.user != "alarms@site" || m.from != "alarms@site" || strings.Join(m.to, ",") != "oncall@site,boss@site" {
		t.Fatalf("mail envelope: %+v", m)
	}
	if !strings.Contains(m.data, "Subject: [test-site] [MAJOR] temp raised") || !strings.Contains(m.data, "comsrv:1:T:1 at 95degC over 90degC") {
		t.Fatalf("mail:\n%s", m.data)
	}
	// The minor alarm was raised first: had it been routed to the channel, which
	// delivers in order, its mail would be the first.
	if strings.Contains(m.data, "volt") {
		t.Fatalf("the minor alarm was mailed:\n%s", m.data)
	}
}
