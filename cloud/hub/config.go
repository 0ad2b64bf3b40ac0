package hub

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
)

// Config is cloud.yaml plus what the caller provides at run time. Every key is
// optional; a missing cloud.yaml means all defaults.
type Config struct {
	NATS    NATS    `yaml:"nats"`
	HTTP    HTTP    `yaml:"http"`
	Sites   []Site  `yaml:"sites"`
	Logging Logging `yaml:"logging"`

	// Log receives the hub's logs, nats-server's included. Default slog.Default().
	Log *slog.Logger `yaml:"-"`
	// Started, when set, is called once every listener is bound, with the bound
	// addresses (so tests and the dev stack can use port 0).
	Started func(Endpoints) `yaml:"-"`
}

// NATS is the embedded hub server. An address with port 0 binds a free port.
type NATS struct {
	ClientAddr string `yaml:"client_addr"` // NATS clients, host:port; default 127.0.0.1:4222
	LeafAddr   string `yaml:"leaf_addr"`   // leaf-node connections of the sites; default 0.0.0.0:7422
	// StoreDir is where JetStream keeps its data, in StoreDir/jetstream.
	// Default ./data/cloud.
	StoreDir string `yaml:"store_dir"`
}

// HTTP is the hub's own HTTP server: /healthz, /readyz, /metrics and /status.
type HTTP struct {
	Addr string `yaml:"addr"` // default 127.0.0.1:7000; VOLTAGE_HTTP_ADDR overrides it
}

// Site is a site the hub expects. The list is informational today (shown in
// /status); the site registry builds on it.
type Site struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
}

// Logging sets the default log level and format; flags override them.
type Logging struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Endpoints are where a running hub listens.
type Endpoints struct {
	ClientURL string   // nats://host:port of the client listener
	LeafURL   string   // nats-leaf://host:port of the leaf-node listener
	HTTP      net.Addr // the HTTP server
}

// applyDefaults fills every empty setting with its default.
func (c *Config) applyDefaults() {
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&c.NATS.ClientAddr, DefaultClientAddr)
	set(&c.NATS.LeafAddr, DefaultLeafAddr)
	set(&c.NATS.StoreDir, DefaultStoreDir)
	set(&c.HTTP.Addr, DefaultHTTPAddr)
	set(&c.Logging.Level, DefaultLogLevel)
	set(&c.Logging.Format, DefaultLogFormat)
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
	for key, addr := range map[string]string{
		"nats.client_addr": c.NATS.ClientAddr,
		"nats.leaf_addr":   c.NATS.LeafAddr,
		"http.addr":        c.HTTP.Addr,
	} {
		if _, err := splitAddr(addr); err != nil {
			v.add("$."+key, "%s: %v", key, err)
		}
	}
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
	seen := map[string]int{}
	for i, s := range c.Sites {
		at := "$.sites[" + strconv.Itoa(i) + "]"
		if err := subjects.ValidSiteID(s.ID); err != nil {
			v.add(at+".id", "sites[%d].id: %v", i, err)
			continue
		}
		if first, dup := seen[s.ID]; dup {
			v.add(at+".id", "sites[%d].id: %q is already sites[%d]", i, s.ID, first)
			continue
		}
		seen[s.ID] = i
	}
	// The addresses are checked in map order; report in file order.
	slices.SortStableFunc(v.errs, func(a, b *config.PosError) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
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
