package hub

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
)

// FileName is the hub's configuration file inside the config folder.
const FileName = "cloud.yaml"

// Defaults of cloud.yaml (DESIGN §9). Clients of the hub run beside it, so the client
// port stays on loopback; sites connect from elsewhere, so the leaf-node port listens
// on every interface.
const (
	DefaultClientAddr = "127.0.0.1:4222"
	DefaultLeafAddr   = "0.0.0.0:7422"
	DefaultStoreDir   = "./data/cloud"
	DefaultHTTPAddr   = "127.0.0.1:7000"
	DefaultLogLevel   = "info"
	DefaultLogFormat  = "text"
	// DefaultHeartbeatInterval is the edge's heartbeat period; a site is online while
	// its last heartbeat is younger than OfflineAfter intervals.
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultStreamMaxAge bounds how long a site's sourced messages stay in the hub.
	DefaultStreamMaxAge = 30 * 24 * time.Hour
	// DefaultStreamMaxBytes bounds each site's hub stream (1 GiB).
	DefaultStreamMaxBytes = 1 << 30
	// DefaultDuplicateWindow is the hub stream's de-duplication window on Nats-Msg-Id.
	DefaultDuplicateWindow = 2 * time.Minute
)

// OfflineAfter is how many heartbeat intervals without a heartbeat make a site
// offline.
const OfflineAfter = 3

// Config is cloud.yaml plus what the caller provides at run time. Every key is
// optional; a missing cloud.yaml means all defaults.
type Config struct {
	NATS     NATS     `yaml:"nats"`
	HTTP     HTTP     `yaml:"http"`
	Streams  Streams  `yaml:"streams"`
	Registry Registry `yaml:"registry"`
	History  History  `yaml:"history"`
	Auth     Auth     `yaml:"auth"`
	Sites    []Site   `yaml:"sites"`
	Logging  Logging  `yaml:"logging"`
	// KeyFigures name the points of every site's key figures (keyfigures.go);
	// sites[].key_figures overrides them per site.
	KeyFigures KeyFigures `yaml:"key_figures"`

	// Log receives the hub's logs, nats-server's included. Default slog.Default().
	Log *slog.Logger `yaml:"-"`
	// Started, when set, is called once every listener is bound, with the bound
	// addresses (so tests and the dev stack can use port 0).
	Started func(Endpoints) `yaml:"-"`
	// AdminOut receives the first admin's generated password, printed once on the
	// first start (default os.Stderr; never the log).
	AdminOut io.Writer `yaml:"-"`
}

// NATS is the embedded hub server. An address with port 0 binds a free port.
type NATS struct {
	// URL, when set, is an external NATS server or cluster (with JetStream) the hub
	// uses instead of its embedded server; the leaf-node port, its TLS and the
	// sites' credentials are then that cluster's configuration, and client_addr,
	// leaf_addr, store_dir and leaf_tls must not be set.
	URL string `yaml:"url"`
	// Credentials is a .creds file for the connection to URL (optional).
	Credentials string `yaml:"credentials"`

	ClientAddr string `yaml:"client_addr"` // NATS clients, host:port; default 127.0.0.1:4222
	LeafAddr   string `yaml:"leaf_addr"`   // leaf-node connections of the sites; default 0.0.0.0:7422
	// StoreDir is where JetStream keeps its data, in StoreDir/jetstream.
	// Default ./data/cloud.
	StoreDir string `yaml:"store_dir"`
	// LeafTLS secures the leaf-node port. Without it the port is plain TCP, which
	// is only for a lab.
	LeafTLS TLS `yaml:"leaf_tls"`
}

// TLS is a server certificate, and optionally a CA to verify client certificates.
type TLS struct {
	Cert string `yaml:"cert"` // PEM certificate (chain) file
	Key  string `yaml:"key"`  // PEM private key file
	// CA, when set, is a PEM bundle; sites must then present a certificate it signed.
	CA string `yaml:"ca"`
}

// Enabled reports whether any TLS setting is given.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

// Streams sets the limits of every site's hub stream (SITE_{site}).
type Streams struct {
	MaxAge   Duration `yaml:"max_age"`   // default 720h; 0s: unlimited
	MaxBytes int64    `yaml:"max_bytes"` // default 1 GiB; -1: unlimited
	MaxMsgs  int64    `yaml:"max_msgs"`  // default -1: unlimited
	// Storage is file (default) or memory (tests and labs only: a restart loses it).
	Storage string `yaml:"storage"`
	// Duplicates is the de-duplication window on Nats-Msg-Id; default 2m.
	Duplicates Duration `yaml:"duplicates"`
}

// Registry sets how the hub tracks sites.
type Registry struct {
	// HeartbeatInterval is the edges' heartbeat period (default 5s); a site is
	// online while its last heartbeat is younger than 3 intervals.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// AutoRegister (default true) registers a site that is not in sites on its
	// first heartbeat, and starts sourcing its UPLINK.
	AutoRegister *bool `yaml:"auto_register"`
}

// Duration is a time.Duration written the Go way in YAML ("5s", "720h").
type Duration struct {
	time.Duration
	bad string // text that is not a duration, reported by the validator at its key
}

// D is a Duration of d.
func D(d time.Duration) Duration { return Duration{Duration: d} }

// UnmarshalText parses "5s", "720h". Text that is not a duration is kept for the
// validator, which reports it with its position (a decode error would have none).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		d.bad = string(b)
		return nil
	}
	d.Duration = v
	return nil
}

// checkDurations reports every duration setting whose text was not a duration.
func (v *validator) checkDurations(c *Config) {
	for key, d := range map[string]Duration{
		"streams.max_age": c.Streams.MaxAge, "streams.duplicates": c.Streams.Duplicates,
		"registry.heartbeat_interval": c.Registry.HeartbeatInterval, "history.retention": c.History.Retention,
		"auth.access_ttl": c.Auth.AccessTTL, "auth.refresh_ttl": c.Auth.RefreshTTL, "auth.lockout": c.Auth.Lockout,
	} {
		if d.bad != "" {
			v.add("$."+key, "%s: want a duration such as 5s or 720h, got %q", key, d.bad)
		}
	}
}

// MarshalText writes the duration the Go way.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// HTTP is the hub's own HTTP server: /healthz, /readyz, /metrics and /status.
type HTTP struct {
	Addr string `yaml:"addr"` // default 127.0.0.1:7000; VOLTAGE_HTTP_ADDR overrides it
}

// Site is a site the hub expects: it is registered at start and its UPLINK is
// sourced from then on.
type Site struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
	// LeafPassword is the bcrypt hash of the password the site's leaf node
	// presents (user = the site id). When any site has one, the leaf port accepts
	// only sites with credentials, each limited to its own subjects.
	LeafPassword string `yaml:"leaf_password" json:"-"`
	// KeyFigures override the fleet's key_figures for this site.
	KeyFigures KeyFigures `yaml:"key_figures" json:"-"`
}

// Logging sets the default log level and format; flags override them.
type Logging struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// applyDefaults fills every empty setting with its default.
func (c *Config) applyDefaults() {
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&c.HTTP.Addr, DefaultHTTPAddr)
	set(&c.Logging.Level, DefaultLogLevel)
	set(&c.Logging.Format, DefaultLogFormat)
	if c.NATS.URL == "" {
		set(&c.NATS.ClientAddr, DefaultClientAddr)
		set(&c.NATS.LeafAddr, DefaultLeafAddr)
		set(&c.NATS.StoreDir, DefaultStoreDir)
	}
	if c.Streams.MaxAge.Duration == 0 {
		c.Streams.MaxAge.Duration = DefaultStreamMaxAge
	}
	if c.Streams.MaxBytes == 0 {
		c.Streams.MaxBytes = DefaultStreamMaxBytes
	}
	if c.Streams.MaxMsgs == 0 {
		c.Streams.MaxMsgs = -1
	}
	set(&c.Streams.Storage, "file")
	if c.Streams.Duplicates.Duration == 0 {
		c.Streams.Duplicates.Duration = DefaultDuplicateWindow
	}
	if c.Registry.HeartbeatInterval.Duration == 0 {
		c.Registry.HeartbeatInterval.Duration = DefaultHeartbeatInterval
	}
	if c.Registry.AutoRegister == nil {
		t := true
		c.Registry.AutoRegister = &t
	}
	c.History.applyDefaults(c.NATS.StoreDir)
	c.Auth.applyDefaults()
}

// ApplyEnv applies VOLTAGE_HTTP_ADDR, the environment override every binary takes
// for its own listen address (DESIGN §3).
func ApplyEnv(c *Config) {
	if v := os.Getenv(service.EnvHTTPAddr); v != "" {
		c.HTTP.Addr = v
	}
}

// Load reads dir/cloud.yaml. A missing file gives the defaults. Unknown keys and
// invalid values are errors: it returns a *config.LoadError whose entries name file,
// line and column, and no Config.
func Load(dir string) (Config, error) {
	path := filepath.Join(dir, FileName)
	var c Config
	src, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.applyDefaults()
		return c, nil
	case err != nil:
		return Config{}, &config.LoadError{Dir: dir, Errors: []*config.PosError{{Pos: config.Position{File: path}, Msg: "read: " + err.Error()}}}
	}
	if errs := parse(path, src, &c); len(errs) > 0 {
		return Config{}, &config.LoadError{Dir: dir, Errors: errs}
	}
	return c, nil
}

// parse decodes and validates src into c, returning every problem found.
func parse(path string, src []byte, c *Config) []*config.PosError {
	if pe := config.DecodeStrict(path, src, c); pe != nil {
		return []*config.PosError{pe}
	}
	// It decoded, so it parses; the tree positions the validator's errors.
	file, _ := parser.ParseBytes(src, 0)
	c.applyDefaults()
	v := validator{path: path, file: file}
	v.validate(c)
	return v.errs
}

// validator checks decoded values and reports them at the key that set them.
type validator struct {
	path string
	file *ast.File
	errs []*config.PosError
}

func (v *validator) add(yamlPath, format string, args ...any) {
	v.errs = append(v.errs, &config.PosError{Pos: v.pos(yamlPath), Msg: fmt.Sprintf(format, args...)})
}

// pos finds the value at yamlPath ("$.sites[1].id"), else its closest written
// parent ("$.sites[1]" for a site without an id); a value that was not written at
// all (a default) is reported at the file.
func (v *validator) pos(yamlPath string) config.Position {
	p := config.Position{File: v.path}
	for yamlPath != "$" && yamlPath != "" && v.file != nil {
		if node := v.lookup(yamlPath); node != nil {
			// A block mapping's token is its first ':'; show its first key instead.
			if m, ok := node.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
				node = m.Values[0].Key
			}
			if tk := node.GetToken(); tk != nil && tk.Position != nil {
				p.Line, p.Column = tk.Position.Line, tk.Position.Column
			}
			return p
		}
		yamlPath = yamlPath[:strings.LastIndexAny(yamlPath, ".[")]
	}
	return p
}

func (v *validator) lookup(yamlPath string) ast.Node {
	yp, err := yaml.PathString(yamlPath)
	if err != nil {
		return nil
	}
	var node ast.Node
	if config.GuardYAML(func() (err error) { node, err = yp.FilterFile(v.file); return err }) != nil {
		return nil
	}
	return node
}

func (v *validator) validate(c *Config) {
	addrs := map[string]string{"http.addr": c.HTTP.Addr}
	if c.NATS.URL == "" {
		addrs["nats.client_addr"] = c.NATS.ClientAddr
		addrs["nats.leaf_addr"] = c.NATS.LeafAddr
		if c.NATS.Credentials != "" {
			v.add("$.nats.credentials", "nats.credentials: only used with nats.url (an external NATS server)")
		}
		v.validateTLS(c.NATS.LeafTLS)
	} else {
		if u, err := url.Parse(c.NATS.URL); err != nil || u.Host == "" {
			v.add("$.nats.url", "nats.url: want a URL such as nats://nats.example:4222, got %q", c.NATS.URL)
		}
		for key, val := range map[string]string{
			"client_addr": c.NATS.ClientAddr, "leaf_addr": c.NATS.LeafAddr, "store_dir": c.NATS.StoreDir,
		} {
			if val != "" {
				v.add("$.nats."+key, "nats.%s: not used with nats.url; the external server's own configuration sets it", key)
			}
		}
		if c.NATS.LeafTLS.Enabled() {
			v.add("$.nats.leaf_tls", "nats.leaf_tls: not used with nats.url; configure TLS on the external server")
		}
		if c.NATS.Credentials != "" {
			if _, err := os.Stat(c.NATS.Credentials); err != nil {
				v.add("$.nats.credentials", "nats.credentials: %v", err)
			}
		}
	}
	for key, addr := range addrs {
		if _, err := splitAddr(addr); err != nil {
			v.add("$."+key, "%s: %v", key, err)
		}
	}
	switch c.Streams.Storage {
	case "file", "memory":
	default:
		v.add("$.streams.storage", "streams.storage: unknown storage %q (want file or memory)", c.Streams.Storage)
	}
	if c.Streams.MaxAge.Duration < 0 {
		v.add("$.streams.max_age", "streams.max_age: must be positive")
	}
	if c.Streams.MaxBytes < -1 {
		v.add("$.streams.max_bytes", "streams.max_bytes: want a number of bytes, or -1 for unlimited")
	}
	if c.Streams.MaxMsgs < -1 {
		v.add("$.streams.max_msgs", "streams.max_msgs: want a number of messages, or -1 for unlimited")
	}
	if c.Streams.Duplicates.Duration < 0 {
		v.add("$.streams.duplicates", "streams.duplicates: must be positive")
	}
	if c.Registry.HeartbeatInterval.Duration < 0 {
		v.add("$.registry.heartbeat_interval", "registry.heartbeat_interval: must be positive")
	}
	v.validateHistory(&c.History)
	v.validateAuth(&c.Auth)
	v.checkDurations(c)
	switch c.Logging.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("$.logging.level", "logging.level: unknown level %q (want debug, info, warn or error)", c.Logging.Level)
	}
	switch c.Logging.Format {
	case "text", "json":
	default:
		v.add("$.logging.format", "logging.format: unknown format %q (want text or json)", c.Logging.Format)
	}
	v.validateKeyFigures("$.key_figures", c.KeyFigures)
	seen := map[string]int{}
	for i, s := range c.Sites {
		at := "$.sites[" + strconv.Itoa(i) + "]"
		v.validateKeyFigures(at+".key_figures", s.KeyFigures)
		if err := subjects.ValidSiteID(s.ID); err != nil {
			v.add(at+".id", "sites[%d].id: %v", i, err)
			continue
		}
		if first, dup := seen[s.ID]; dup {
			v.add(at+".id", "sites[%d].id: %q is already sites[%d]", i, s.ID, first)
			continue
		}
		seen[s.ID] = i
		if s.LeafPassword != "" {
			if c.NATS.URL != "" {
				v.add(at+".leaf_password", "sites[%d].leaf_password: not used with nats.url; the external server's configuration holds the sites' credentials", i)
			} else if !bcryptHash.MatchString(s.LeafPassword) {
				v.add(at+".leaf_password", "sites[%d].leaf_password: want a bcrypt hash ($2a$…, make one with `voltage-cloud hash-password`), never the password itself", i)
			}
		}
	}
	// The addresses are checked in map order; report in file order.
	slices.SortStableFunc(v.errs, func(a, b *config.PosError) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
}

// bcryptHash is what nats-server takes as a hashed password.
var bcryptHash = regexp.MustCompile(`^\$2[abxy]\$\d{2}\$.{53}$`)

// validateTLS checks that the files of nats.leaf_tls exist and belong together.
func (v *validator) validateTLS(t TLS) {
	if !t.Enabled() {
		return
	}
	if t.Cert == "" || t.Key == "" {
		v.add("$.nats.leaf_tls", "nats.leaf_tls: cert and key are both required")
		return
	}
	if _, err := loadTLS(t); err != nil {
		v.add("$.nats.leaf_tls", "nats.leaf_tls: %v", err)
	}
}

// hostPort is a listen address as nats-server wants it.
type hostPort struct {
	host string
	port int // -1 for "any free port"; nats-server reads 0 as "the default port"
}

// splitAddr parses host:port with a numeric port; port 0 means any free port.
func splitAddr(addr string) (hostPort, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, fmt.Errorf("want host:port, got %q", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return hostPort{}, fmt.Errorf("port %q is not a number 0..65535", p)
	}
	if n == 0 {
		n = -1
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return hostPort{host: host, port: n}, nil
}
