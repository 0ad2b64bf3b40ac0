package hub_test

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
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/natsx"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/uplink"
)

// edge is a simulated edge site: an embedded nats-server with JetStream domain =
// the site id, joined to the hub as a leaf node, with the UPLINK stream the edge
// bridge keeps.
type edge struct {
	t    testing.TB
	site string
	dir  string // JetStream store, kept across restarts
	leaf edgeLeaf
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
}

// edgeLeaf is how the edge reaches the hub.
type edgeLeaf struct {
	url      string // the hub's (or the proxy's) leaf URL
	user     string
	password string
	tls      *tls.Config
	log      *slog.Logger // default testLogger()
}

func startEdge(t testing.TB, site string, leaf edgeLeaf) *edge {
	t.Helper()
	e := &edge{t: t, site: site, dir: t.TempDir(), leaf: leaf}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *edge) start() {
	e.t.Helper()
	u, err := url.Parse(e.leaf.url)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.leaf.user != "" {
		u.User = url.UserPassword(e.leaf.user, e.leaf.password)
	}
	remote := &server.RemoteLeafOpts{URLs: []*url.URL{u}}
	if e.leaf.tls != nil {
		remote.TLS, remote.TLSConfig, remote.TLSTimeout = true, e.leaf.tls, 5
	}
	opts := &server.Options{
		ServerName: "edge-" + e.site, Host: "127.0.0.1", Port: -1,
		JetStream: true, JetStreamDomain: e.site, StoreDir: e.dir,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 200 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{remote}},
		NoSigs:   true,
	}
	log := e.leaf.log
	if log == nil {
		log = testLogger()
	}
	ns, err := natsx.StartServer(opts, log.With("edge", e.site))
	if err != nil {
		e.t.Fatalf("start edge %s: %v", e.site, err)
	}
	e.ns = ns
	if e.nc, err = nats.Connect(ns.ClientURL()); err != nil {
		e.t.Fatal(err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: subjects.UplinkStream, Subjects: subjects.UplinkSubjects(e.site), Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute,
	}); err != nil {
		e.t.Fatalf("edge %s: create UPLINK: %v", e.site, err)
	}
}

func (e *edge) stop() {
	if e.ns == nil {
		return
	}
	e.nc.Close()
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	e.ns = nil
}

func (e *edge) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// publish stores one uplink message with its de-duplication id.
func (e *edge) publish(subject, msgID string, data []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(uplink.HeaderMsgID, msgID)
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		e.t.Fatalf("edge %s: publish %s: %v", e.site, subject, err)
	}
}

// change publishes a change batch of channel ch (telemetry) with n as its id.
func (e *edge) change(ch uint32, n int, values string) string {
	id := uplink.MsgID(e.site, uplink.SourceChanges, fmt.Sprintf("%d-0", 1_700_000_000_000+n))
	e.publish(fmt.Sprintf("ems.%s.up.comsrv.%d.T", e.site, ch), id,
		fmt.Appendf(nil, `{"ts":%d,"v":{%s}}`, 1_700_000_000_000+int64(n), values))
	return id
}

// leafConnected reports whether the edge has its leaf link up.
func (e *edge) leafConnected() bool {
	return e.ns != nil && e.ns.NumLeafNodes() == 1
}

// proxy is a TCP relay between an edge and the hub's leaf port that a test can
// cut (every connection closed, new ones refused) and restore on the same port.
type proxy struct {
	t      testing.TB
	addr   string
	mu     sync.Mutex
	target string
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) url(scheme string) string { return scheme + "://" + p.addr }

func (p *proxy) setTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// cut closes the listener and every relayed connection: the link is down.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same port.
func (p *proxy) restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port is released asynchronously by the kernel
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// hubStreamIDs reads every message of a site's hub stream and returns the message
// ids in order.
func hubStreamIDs(t *testing.T, clientURL, site string) []string {
	t.Helper()
	nc, err := nats.Connect(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, subjects.HubStream(site))
	if err != nil {
		t.Fatalf("hub stream of %s: %v", site, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if info.State.Msgs == 0 {
		return ids
	}
	cons, err := str.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for uint64(len(ids)) < info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read hub stream of %s after %d of %d: %v", site, len(ids), info.State.Msgs, err)
		}
		ids = append(ids, m.Headers().Get(uplink.HeaderMsgID))
	}
	return ids
}

// hubStreamCount is the number of messages in a site's hub stream (0 without one).
func hubStreamCount(clientURL, site string) (uint64, error) {
	nc, err := nats.Connect(clientURL)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, subjects.HubStream(site))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := str.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// sameIDs checks that got holds exactly the ids of want, each once.
func sameIDs(got, want []string) error {
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			return fmt.Errorf("id %s arrived %d times", id, n)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			return fmt.Errorf("id %s never arrived (%d of %d arrived)", id, len(got), len(want))
		}
		delete(seen, id)
	}
	if len(seen) > 0 {
		return fmt.Errorf("%d ids arrived that were never sent", len(seen))
	}
	return nil
}

// pki is a test CA with a server certificate for 127.0.0.1 and client
// certificates, all written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	CAFile string
	pool   *x509.CertPool
	serial int64
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool(), serial: 1}
	p.pool.AddCert(ca)
	p.CAFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a certificate; server ones are for 127.0.0.1.
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = p.write(t, name+".pem", "CERTIFICATE", der)
	keyFile = p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

// bcryptOf hashes a leaf password the way an operator puts it in cloud.yaml.
func bcryptOf(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// logRecorder keeps every log message, to wait for one naming a refusal.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// contains reports whether a logged message contains every part (case-insensitive).
func (r *logRecorder) contains(parts ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		lm, all := strings.ToLower(m), true
		for _, p := range parts {
			all = all && strings.Contains(lm, strings.ToLower(p))
		}
		if all {
			return true
		}
	}
	return false
}
