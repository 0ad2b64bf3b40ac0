package appliance

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/subjects"
)

// Defaults of the embedded NATS server (DESIGN §9).
const (
	// DefaultNATSAddr is the client listener when site.yaml gives no nats.url. Only
	// the site's own services connect, so it stays on loopback.
	DefaultNATSAddr = "127.0.0.1:4222"
	// DefaultNATSStoreDir holds JetStream's files, in DefaultNATSStoreDir/jetstream.
	DefaultNATSStoreDir = "./data/edge"
)

// ServerName is the embedded server's name for site: what the hub lists as the
// leaf node. The prefix keeps a site id from clashing with the hub's own name.
func ServerName(site string) string { return "edge-" + site }

// natsSettings is the embedded server's configuration, checked before it starts.
type natsSettings struct {
	site     string
	host     string
	port     int // -1: any free port (nats-server reads 0 as its default port)
	storeDir string
	leaf     *server.RemoteLeafOpts // nil without nats.leaf_remote
}

// leafRemote is the hub URL without its user information, for logs and /status.
func (n *natsSettings) leafRemote() string {
	if n.leaf == nil {
		return ""
	}
	return n.leaf.URLs[0].Redacted()
}

// newNATSSettings reads the site's nats section. The client listener is the host and
// port of nats.url (VOLTAGE_NATS_URL overrides it): the URL the site's services use
// to reach NATS is the one the appliance serves.
func newNATSSettings(site *config.Config, storeDir string) (*natsSettings, error) {
	id := site.Site.Site.ID
	if err := subjects.ValidSiteID(id); err != nil {
		return nil, fmt.Errorf("site.id: %w", err)
	}
	n := &natsSettings{site: id, storeDir: storeDir}
	if n.storeDir == "" {
		n.storeDir = DefaultNATSStoreDir
	}
	addr := DefaultNATSAddr
	if raw := site.Site.NATS.URL; raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("nats.url %q: %w", raw, err)
		}
		if u.Scheme != "nats" {
			return nil, fmt.Errorf("nats.url %q: the appliance serves plain nats:// on this host; want nats://host:port", raw)
		}
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "4222")
		}
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats listen address %q: port is not a number 0..65535", addr)
	}
	if port == 0 {
		port = -1
	}
	if host == "" {
		host = "127.0.0.1"
	}
	n.host, n.port = host, port

	if raw := site.Site.NATS.LeafRemote; raw != "" {
		if n.leaf, err = leafRemote(raw, site.Site.NATS.Credentials, site.Site.NATS.TLS); err != nil {
			return nil, err
		}
	} else if site.Site.NATS.Credentials != "" {
		return nil, errors.New("nats.credentials is set but nats.leaf_remote is not; the credentials are for the hub link")
	}
	return n, nil
}

// leafRemote builds the link to the hub. nats-server redials it on its own (every
// second) for as long as the appliance runs.
func leafRemote(raw, creds string, tlsFiles config.NATSTLS) (*server.RemoteLeafOpts, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("nats.leaf_remote %q: want a URL such as nats-leaf://hub.example:7422", raw)
	}
	r := &server.RemoteLeafOpts{
		URLs: []*url.URL{u},
		// A tls:// (or wss://) hub must be reached over TLS, never in the clear; a
		// plain URL still upgrades when the hub asks for TLS.
		TLS: u.Scheme == "tls" || u.Scheme == "wss",
	}
	if creds != "" {
		// nats-server reads the file at every dial; reading it now turns a typo into
		// a start error instead of a link that silently never comes up.
		if _, err := os.ReadFile(creds); err != nil {
			return nil, fmt.Errorf("nats.credentials: %w", err)
		}
		r.Credentials = creds
	}
	if tlsFiles != (config.NATSTLS{}) {
		tc, err := leafTLS(tlsFiles)
		if err != nil {
			return nil, err
		}
		r.TLS, r.TLSConfig = true, tc
	}
	return r, nil
}

// leafTLS is the TLS of the hub link from nats.tls: the hub's certificate is
// checked against ca_file (else the system's roots), and the site presents
// cert_file/key_file when given. Files are read now, so a wrong path is a start
// error rather than a link that never comes up.
func leafTLS(f config.NATSTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca_file %s: no PEM certificate in it", f.CAFile)
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// options are the nats-server options of the embedded server.
func (n *natsSettings) options() *server.Options {
	o := &server.Options{
		ServerName:      ServerName(n.site),
		Host:            n.host,
		Port:            n.port,
		JetStream:       true,
		JetStreamDomain: n.site,
		StoreDir:        n.storeDir,
	}
	if n.leaf != nil {
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{n.leaf}
	}
	return o
}
