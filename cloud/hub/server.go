package hub

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/voltageems/voltage/shared/subjects"
)

// ServerName is the hub's nats-server name, as leaf nodes see it.
const ServerName = "voltage-cloud"

// serverOptions turns the settings into nats-server options for the embedded hub.
func serverOptions(cfg *Config) (*server.Options, error) {
	client, err := splitAddr(cfg.NATS.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("nats.client_addr: %w", err)
	}
	leaf, err := splitAddr(cfg.NATS.LeafAddr)
	if err != nil {
		return nil, fmt.Errorf("nats.leaf_addr: %w", err)
	}
	if cfg.NATS.StoreDir == "" {
		return nil, errors.New("nats.store_dir: must not be empty")
	}
	o := &server.Options{
		ServerName: ServerName,
		Host:       client.host,
		Port:       client.port,
		// NoAdvertise: sites dial the URL they are configured with (a load balancer,
		// a public name); the hub's own listen address means nothing to them.
		LeafNode:  server.LeafNodeOpts{Host: leaf.host, Port: leaf.port, NoAdvertise: true},
		JetStream: true,
		StoreDir:  cfg.NATS.StoreDir,
	}
	if users := LeafUsers(cfg.Sites); len(users) > 0 {
		// Site users are server users restricted to leaf-node connections: only
		// this path applies a user's permissions to a leaf node (users of the
		// leafnodes authorization block get none). Clients of the client port,
		// which stays on loopback or a private network, connect without
		// credentials as the local user; a leaf node without credentials is
		// refused, as the local user may not connect as a leaf node.
		local := &server.User{
			Username: LocalUser, Password: randomSecret(),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeStandard: {}, jwt.ConnectionTypeInProcess: {}},
		}
		o.Users = append(users, local)
		o.NoAuthUser = LocalUser
	}
	if cfg.NATS.LeafTLS.Enabled() {
		tc, err := loadTLS(cfg.NATS.LeafTLS)
		if err != nil {
			return nil, fmt.Errorf("nats.leaf_tls: %w", err)
		}
		o.LeafNode.TLSConfig = tc
		o.LeafNode.TLSTimeout = 5
	}
	return o, nil
}

// loadTLS reads the certificate, key and client CA of a TLS section.
func loadTLS(t TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("load cert %s and key %s: %w", t.Cert, t.Key, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("read ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate in it", t.CA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// LocalUser is the NATS user of connections to the hub's client port.
const LocalUser = "voltage-cloud-local"

func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LeafUsers are the leaf-node users of the sites that have a leaf password: user
// name = site id, each allowed only its own subjects (SitePermissions). nil when no
// site has one: the leaf port is then open (a lab setup).
func LeafUsers(sites []Site) []*server.User {
	var users []*server.User
	for _, s := range sites {
		if s.LeafPassword == "" {
			continue
		}
		users = append(users, &server.User{
			Username: s.ID, Password: s.LeafPassword, Permissions: SitePermissions(s.ID),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeLeafnode: {}},
		})
	}
	return users
}

// SitePermissions are what a site's leaf node may send to the hub (Publish) and
// receive from it (Subscribe), from the leaf's point of view:
//
//   - its own subjects, ems.{site}.>: uplink, heartbeats, the sourced messages
//     (delivered on ems.{site}.sync.…, subjects.SourceDeliver), downlink commands
//     and their replies (ems.{site}.reply.…, subjects.CommandReplies);
//   - its JetStream domain's API, $JS.{site}.API.>, through which the hub creates
//     the sourcing consumer on the site's UPLINK, and the replies to those API
//     calls ($JSC.R.>, addressed to the hub's random reply subjects);
//   - flow control of that consumer ($JS.FC.>: empty messages answered by the hub).
//
// Nothing else: not another site's ems.{other}.> nor the hub's own JetStream API.
func SitePermissions(site string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			subjects.SiteAll(site),
			"$JSC.R.>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			subjects.SiteAll(site),
			subjects.JSDomainAPI(site) + ".>",
			"$JS.FC.>",
		}},
	}
}

// leafURL is where sites reach the leaf-node listener. nats-server wrote the bound
// port back into opts during Start.
func leafURL(opts *server.Options) string {
	scheme := "nats-leaf"
	if opts.LeafNode.TLSConfig != nil {
		scheme = "tls"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(opts.LeafNode.Host, strconv.Itoa(opts.LeafNode.Port))}
	return u.String()
}
