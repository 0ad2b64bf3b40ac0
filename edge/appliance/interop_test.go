package appliance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
)

// debianNATS is the distribution's nats-server: the hub of the interop test is
// not the version embedded in our binaries.
const debianNATS = "/usr/sbin/nats-server"

// testPKI writes a CA, a hub server certificate for 127.0.0.1 and a site client
// certificate into dir, and returns their paths.
type testPKI struct{ ca, hubCert, hubKey, siteCert, siteKey string }

func writePKI(t *testing.T, dir string) testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "EC PRIVATE KEY", der)
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voltage test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	hubDER, hubKey := issue(2, "hub", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	siteDER, siteKey := issue(3, siteID, x509.ExtKeyUsageClientAuth, nil)
	return testPKI{
		ca:      write("ca.pem", "CERTIFICATE", caDER),
		hubCert: write("hub.pem", "CERTIFICATE", hubDER), hubKey: writeKey("hub-key.pem", hubKey),
		siteCert: write("site.pem", "CERTIFICATE", siteDER), siteKey: writeKey("site-key.pem", siteKey),
	}
}

// leafPassword is the site's leaf-node password on the hub (per-site credentials).
const leafPassword = "s3cret-site-a"

// debianHub is /usr/sbin/nats-server run as the hub: JetStream (domain "hub")
// and a leaf-node listener that requires TLS with a client certificate and the
// site's user and password, on free ports. It can be stopped and started again on the same ports and store.
type debianHub struct {
	t         *testing.T
	conf      string
	clientURL string
	leafPort  int
	proc      *testharness.LoggedProcess
}

func startDebianHub(t *testing.T, pki testPKI) *debianHub {
	t.Helper()
	if _, err := os.Stat(debianNATS); err != nil {
		t.Fatalf("%s not found (%v): install it with `apt-get install nats-server`", debianNATS, err)
	}
	dir := t.TempDir()
	clientPort, leafPort := testharness.FreePort(t), testharness.FreePort(t)
	conf := fmt.Sprintf(`server_name: hub
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  domain: hub
  max_memory_store: 64MB
  max_file_store: 256MB
}
leafnodes {
  listen: 127.0.0.1:%d
  tls {
    cert_file: %q
    key_file: %q
    ca_file: %q
    verify: true
    timeout: 5
  }
  authorization {
    users = [ {user: %q, password: %q} ]
  }
}
`, clientPort, filepath.Join(dir, "js"), leafPort, pki.hubCert, pki.hubKey, pki.ca, siteID, leafPassword)
	h := &debianHub{t: t, conf: filepath.Join(dir, "hub.conf"), clientURL: fmt.Sprintf("nats://127.0.0.1:%d", clientPort), leafPort: leafPort}
	if err := os.WriteFile(h.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	return h
}

func (h *debianHub) start() {
	h.t.Helper()
	h.proc, _ = testharness.StartLogged(h.t, exec.Command(debianNATS, "-c", h.conf), regexp.MustCompile(`Server is ready`), 20*time.Second)
}

func (h *debianHub) stop() {
	h.t.Helper()
	if err := h.proc.Stop(h.t, syscall.SIGINT, 10*time.Second); err != nil {
		h.t.Logf("hub exited with %v", err)
	}
}

// connect is a client of the hub and its JetStream.
func (h *debianHub) connect() (*nats.Conn, jetstream.JetStream) {
	h.t.Helper()
	nc, err := nats.Connect(h.clientURL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	return nc, js
}

// sourceSite creates the hub stream that sources the site's UPLINK across the
// leaf, through the site's JetStream domain, as the cloud hub does.
func sourceSite(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: subjects.HubStream(siteID), Storage: jetstream.FileStorage,
		Sources: []*jetstream.StreamSource{{
			Name:     subjects.UplinkStream,
			External: &jetstream.ExternalStream{APIPrefix: subjects.JSDomainAPI(siteID), DeliverPrefix: subjects.SourceDeliver(siteID)},
		}},
	}); err != nil {
		t.Fatalf("create %s on the hub: %v", subjects.HubStream(siteID), err)
	}
}

// startLinkedSite runs Redis and the appliance joined to hub over TLS with the
// site's client certificate.
func startLinkedSite(t *testing.T, hub *debianHub, pki testPKI) (*runningAppliance, *redis.Client) {
	t.Helper()
	rd := testharness.StartRedis(t)
	dir := writeSite(t, rd.URL(), fmt.Sprintf(`{url: "nats://127.0.0.1:0", leaf_remote: "tls://%s:%s@127.0.0.1:%d", tls: {ca_file: %q, cert_file: %q, key_file: %q}}`,
		siteID, leafPassword, hub.leafPort, pki.ca, pki.siteCert, pki.siteKey))
	writeFile(t, filepath.Join(dir, "edge", "uplink.yaml"), "stream: {max_mb: 64}\n")
	a := startAppliance(t, appliance.Config{Site: loadSite(t, dir), ConfigDir: dir})
	testharness.WaitFor(t, 20*time.Second, "the leaf link to the Debian hub", func() bool { return a.status().NATS.LeafConnected })
	if st := a.status(); strings.Contains(st.NATS.LeafRemote, leafPassword) {
		t.Errorf("/status shows the leaf password: %s", st.NATS.LeafRemote)
	}
	return a, rd.Client(t)
}

// hubEntries are the Voltage-Entry headers of the hub stream's messages on subject.
func hubEntries(ctx context.Context, js jetstream.JetStream, subject string) ([]string, error) {
	s, err := js.Stream(ctx, subjects.HubStream(siteID))
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.Subject == subject {
			out = append(out, m.Header.Get(uplink.HeaderEntry))
		}
	}
	return out, nil
}

// writeChanges writes n change batches of channel 77 and returns their entry ids.
func writeChanges(t *testing.T, rdb *redis.Client, n int) {
	t.Helper()
	w := statestore.NewWriter(rdb, 0)
	for i := range n {
		if err := w.Write(context.Background(), statestore.ChannelBatch(77, point.Telemetry, time.Now().UnixMilli(),
			[]point.Sample{{ID: 1, Value: float64(i)}})); err != nil {
			t.Fatal(err)
		}
	}
}

// changeEntries are the voltage:changes entry ids of channel 77's telemetry.
func changeEntries(t *testing.T, rdb *redis.Client) []string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		if m.Values["key"] == keyspace.ChannelPoints(77, point.Telemetry) {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// A cut link loses nothing: while the hub is down the site keeps storing in
// UPLINK; when it is back, the hub's stream catches up with every change,
// each exactly once.
func TestLinkCutLosesNothing(t *testing.T) {
	pki := writePKI(t, t.TempDir())
	hub := startDebianHub(t, pki)
	a, rdb := startLinkedSite(t, hub, pki)
	_, js := hub.connect()
	sourceSite(t, js)
	subject := subjects.ChannelUp(siteID, 77, point.Telemetry)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitHub := func(n int) {
		testharness.Eventually(t, 60*time.Second, func() error {
			got, err := hubEntries(ctx, js, subject)
			if err != nil {
				return err
			}
			if len(got) < n {
				return fmt.Errorf("hub holds %d of %d changes", len(got), n)
			}
			return nil
		})
	}

	writeChanges(t, rdb, 50)
	waitHub(50)

	hub.stop()
	testharness.WaitFor(t, 20*time.Second, "the leaf link to go down", func() bool { return !a.status().NATS.LeafConnected })
	writeChanges(t, rdb, 150)
	testharness.WaitFor(t, 20*time.Second, "the site to store the changes made during the cut", func() bool {
		return a.status().Uplink["changes"].Published >= 200
	})

	hub.start()
	waitHub(200)
	got, err := hubEntries(ctx, js, subject)
	if err != nil {
		t.Fatal(err)
	}
	want := changeEntries(t, rdb)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("hub holds %d entries, Redis wrote %d; they differ (lost or duplicated)", len(got), len(want))
	}
}

// The appliance's leaf joins Debian's nats-server over TLS with the site's client
// certificate; a stream on the hub sources the site's UPLINK across the leaf
// through the site's JetStream domain ($JS.{site}.API), and a change written to
// the site's Redis arrives there with its headers.
func TestInteropWithDebianNATSHub(t *testing.T) {
	pki := writePKI(t, t.TempDir())
	hubSrv := startDebianHub(t, pki)
	a, rdb := startLinkedSite(t, hubSrv, pki)
	hub, js := hubSrv.connect()
	sourceSite(t, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := subjects.HubStream(siteID)

	// Data produced in the site's Redis, as comsrv writes it.
	if err := statestore.NewWriter(rdb, 0).Write(ctx, statestore.ChannelBatch(77, point.Telemetry, time.Now().UnixMilli(),
		[]point.Sample{{ID: 1, Value: 12.5}, {ID: 2, Value: -1}})); err != nil {
		t.Fatal(err)
	}
	var entry string
	testharness.Eventually(t, 10*time.Second, func() error {
		msgs, err := rdb.XRange(ctx, keyspace.Changes, "-", "+").Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Values["key"] == keyspace.ChannelPoints(77, point.Telemetry) {
				entry = m.ID
				return nil
			}
		}
		return errors.New("the change is not in voltage:changes")
	})

	want := subjects.ChannelUp(siteID, 77, point.Telemetry)
	testharness.Eventually(t, 30*time.Second, func() error {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		m, err := s.GetLastMsgForSubject(ctx, want)
		if err != nil {
			return fmt.Errorf("no %s on the hub yet: %w", want, err)
		}
		if m.Header.Get(uplink.HeaderEntry) != entry || m.Header.Get(uplink.HeaderMsgID) != uplink.MsgID(siteID, uplink.SourceChanges, entry) {
			return fmt.Errorf("hub message headers = %v, want entry %s", m.Header, entry)
		}
		msg, err := statestore.DecodeMessage(m.Data)
		if err != nil || msg.V["1"] != 12.5 || msg.V["2"] != -1 {
			return fmt.Errorf("hub message body %s (%v)", m.Data, err)
		}
		return nil
	})
	if st := a.status(); st.Uplink["changes"].Published == 0 || st.Uplink["changes"].Acked < st.Uplink["changes"].Published {
		t.Errorf("/status uplink = %+v", st.Uplink)
	}

	// A command from the hub crosses the leaf the other way and is answered by the
	// site: rejected, since this site allows nothing remotely.
	var m *nats.Msg
	testharness.Eventually(t, 10*time.Second, func() error { // until the site's interest reached the hub
		var err error
		m, err = hub.Request(subjects.DownCommand(siteID), []byte(`{"channel":10,"type":"A","point":1,"value":1,"user":"ops"}`), 5*time.Second)
		return err
	})
	var reply uplink.CommandReply
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.Site != siteID || reply.Result.Status != command.Rejected ||
		!strings.Contains(reply.Result.Error, "allow-list") {
		t.Errorf("reply = %s (%v), want rejected: not on the allow-list", m.Data, err)
	}
}
