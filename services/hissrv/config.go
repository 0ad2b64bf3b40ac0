package hissrv

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/prometheus/common/model"

	"github.com/voltageems/voltage/shared/config"
)

// ConfigFile is hissrv's file inside the site folder.
const ConfigFile = "hissrv/hissrv.yaml"

// DefaultDataDir is where the embedded store and the spools live when neither
// hissrv.yaml nor --data says otherwise (relative to the working directory).
const DefaultDataDir = "./data/hissrv"

// File is hissrv.yaml. Every key is optional; a site without the file runs the
// embedded store in DefaultDataDir with the defaults below.
type File struct {
	// DataDir holds the embedded store (embedded/) and one spool per backend (spool/NAME).
	DataDir string `yaml:"data_dir"`
	// BatchSize is how many voltage:changes entries one read takes. Default 1000.
	BatchSize int `yaml:"batch_size"`
	// Spool is the on-disk overflow used while a backend is down.
	Spool SpoolConfig `yaml:"spool"`
	// Embedded configures the built-in store.
	Embedded EmbeddedConfig `yaml:"embedded"`
	// Influx lists InfluxDB 2 (or compatible) servers, each written independently.
	Influx []InfluxConfig `yaml:"influx"`
}

// SpoolConfig: while a backend is down its backlog stays in the stream until the
// backlog reaches Threshold × changes_maxlen; then entries move to the spool.
type SpoolConfig struct {
	Threshold float64  `yaml:"threshold"` // 0 < t < 1; default 0.5
	MaxBytes  ByteSize `yaml:"max_bytes"` // default 256MiB per backend
	MaxAge    Duration `yaml:"max_age"`   // 0 = kept until the cap; default 0
}

// EmbeddedConfig configures the embedded TSDB backend.
type EmbeddedConfig struct {
	Enabled   *bool      `yaml:"enabled"`   // default true
	SyncWAL   *bool      `yaml:"sync_wal"`  // fsync before acknowledging; default true
	Retention Retention  `yaml:"retention"` // raw samples; default 30d, no size cap
	Grace     Duration   `yaml:"grace"`     // late-sample allowance of a bucket; default 2m
	Tiers     []TierSpec `yaml:"tiers"`     // default 1m (1y) and 1h (5y)
}

// Retention bounds a store by age and size (0 = no bound).
type Retention struct {
	Age  Duration `yaml:"age"`
	Size ByteSize `yaml:"size"`
}

// TierSpec is one downsampled tier.
type TierSpec struct {
	Name      string    `yaml:"name"`  // [a-z0-9]+, e.g. 1m
	Width     Duration  `yaml:"width"` // bucket width
	Retention Retention `yaml:"retention"`
}

// InfluxConfig is one InfluxDB 2 server.
type InfluxConfig struct {
	Name        string   `yaml:"name"` // [a-z0-9_-]+; the consumer group is hissrv:influx-NAME
	URL         string   `yaml:"url"`
	Token       string   `yaml:"token"`      // or token_file, or the env VOLTAGE_INFLUX_TOKEN_{NAME}
	TokenFile   string   `yaml:"token_file"` // a file holding the token
	Org         string   `yaml:"org"`
	Bucket      string   `yaml:"bucket"`
	Measurement string   `yaml:"measurement"` // default voltage_point
	BatchSize   int      `yaml:"batch_size"`  // lines per HTTP request; default 5000
	Gzip        *bool    `yaml:"gzip"`        // default true
	Timeout     Duration `yaml:"timeout"`     // per request; default 10s
	MaxBackoff  Duration `yaml:"max_backoff"` // retry pause cap; default 30s
}

// Duration accepts Prometheus durations: 90s, 15m, 2h, 30d, 1w, 1y. A value that
// does not parse is kept as an error and reported by ParseFile at its position
// (the YAML library loses the position of errors returned by UnmarshalText).
type Duration struct {
	d   time.Duration
	err error
}

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{d: d} }

// UnmarshalText parses the duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := model.ParseDuration(string(b))
	if err != nil {
		*d = Duration{err: fmt.Errorf("duration %q: want e.g. 90s, 15m, 2h, 30d, 1y", b)}
		return nil
	}
	*d = Duration{d: time.Duration(v)}
	return nil
}

// D is the time.Duration.
func (d Duration) D() time.Duration { return d.d }

// ByteSize accepts a number of bytes with an optional unit: 512MiB, 10GB, 1048576.
type ByteSize struct {
	n   int64
	err error
}

// Bytes makes a ByteSize.
func Bytes(n int64) ByteSize { return ByteSize{n: n} }

// N is the number of bytes.
func (s ByteSize) N() int64 { return s.n }

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([KMGT]i?B|B)?$`)

// UnmarshalText parses the size.
func (s *ByteSize) UnmarshalText(b []byte) error {
	*s = ByteSize{}
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(string(b)))
	if m == nil {
		s.err = fmt.Errorf("size %q: want a number of bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", b)
		return nil
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	if err != nil || n > (1<<62)/mult {
		s.err = fmt.Errorf("size %q is too large", b)
		return nil
	}
	s.n = n * mult
	return nil
}

// Defaults.
const (
	DefaultBatchSize      = 1000
	DefaultSpoolThreshold = 0.5
	DefaultSpoolMaxBytes  = 256 << 20
	DefaultInfluxBatch    = 5000
	DefaultMeasurement    = "voltage_point"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// DefaultFile is the configuration of a site without hissrv.yaml.
func DefaultFile() File {
	var f File
	applyDefaults(&f)
	return f
}

func applyDefaults(f *File) {
	if f.DataDir == "" {
		f.DataDir = DefaultDataDir
	}
	if f.BatchSize == 0 {
		f.BatchSize = DefaultBatchSize
	}
	if f.Spool.Threshold == 0 {
		f.Spool.Threshold = DefaultSpoolThreshold
	}
	if f.Spool.MaxBytes == (ByteSize{}) {
		f.Spool.MaxBytes = Bytes(DefaultSpoolMaxBytes)
	}
	t := true
	if f.Embedded.Enabled == nil {
		f.Embedded.Enabled = &t
	}
	if f.Embedded.SyncWAL == nil {
		f.Embedded.SyncWAL = &t
	}
	if f.Embedded.Retention.Age == (Duration{}) {
		f.Embedded.Retention.Age = Dur(30 * 24 * time.Hour)
	}
	if f.Embedded.Grace == (Duration{}) {
		f.Embedded.Grace = Dur(2 * time.Minute)
	}
	if f.Embedded.Tiers == nil {
		f.Embedded.Tiers = []TierSpec{
			{Name: "1m", Width: Dur(time.Minute), Retention: Retention{Age: Dur(365 * 24 * time.Hour)}},
			{Name: "1h", Width: Dur(time.Hour), Retention: Retention{Age: Dur(5 * 365 * 24 * time.Hour)}},
		}
	}
	for i := range f.Influx {
		ic := &f.Influx[i]
		if ic.Measurement == "" {
			ic.Measurement = DefaultMeasurement
		}
		if ic.BatchSize == 0 {
			ic.BatchSize = DefaultInfluxBatch
		}
		if ic.Gzip == nil {
			ic.Gzip = &t
		}
		if ic.Timeout == (Duration{}) {
			ic.Timeout = Dur(10 * time.Second)
		}
		if ic.MaxBackoff == (Duration{}) {
			ic.MaxBackoff = Dur(30 * time.Second)
		}
	}
}

// LoadFile reads hissrv.yaml from the site folder dir. A missing file gives the
// defaults; any problem is a *config.LoadError listing every error with its
// file:line:col.
func LoadFile(dir string) (File, error) {
	path := filepath.Join(dir, ConfigFile)
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultFile(), nil
	}
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", path, err)
	}
	return ParseFile(path, src)
}

// ParseFile decodes and validates the content of hissrv.yaml (path names it in errors).
func ParseFile(path string, src []byte) (File, error) {
	if pos, n := documents(path, src); n > 1 {
		return File{}, &config.LoadError{Dir: filepath.Dir(path), Errors: []*config.PosError{{Pos: pos, Msg: fmt.Sprintf("the file holds %d YAML documents; write one", n)}}}
	}
	var f File
	if pe := config.DecodeStrict(path, src, &f); pe != nil {
		return File{}, &config.LoadError{Dir: filepath.Dir(path), Errors: []*config.PosError{pe}}
	}
	applyDefaults(&f)
	var errs []*config.PosError
	add := func(yamlPath, format string, args ...any) {
		errs = append(errs, &config.PosError{Pos: position(path, src, yamlPath), Msg: fmt.Sprintf(format, args...)})
	}
	dur := func(yamlPath string, d Duration) {
		if d.err != nil {
			add(yamlPath, "%s: %v", strings.TrimPrefix(yamlPath, "$."), d.err)
		} else if d.d < 0 {
			add(yamlPath, "%s must not be negative", strings.TrimPrefix(yamlPath, "$."))
		}
	}
	size := func(yamlPath string, b ByteSize) {
		if b.err != nil {
			add(yamlPath, "%s: %v", strings.TrimPrefix(yamlPath, "$."), b.err)
		}
	}
	dur("$.spool.max_age", f.Spool.MaxAge)
	size("$.spool.max_bytes", f.Spool.MaxBytes)
	dur("$.embedded.retention.age", f.Embedded.Retention.Age)
	size("$.embedded.retention.size", f.Embedded.Retention.Size)
	dur("$.embedded.grace", f.Embedded.Grace)
	for i, t := range f.Embedded.Tiers {
		at := fmt.Sprintf("$.embedded.tiers[%d]", i)
		dur(at+".width", t.Width)
		dur(at+".retention.age", t.Retention.Age)
		size(at+".retention.size", t.Retention.Size)
	}
	for i, ic := range f.Influx {
		at := fmt.Sprintf("$.influx[%d]", i)
		dur(at+".timeout", ic.Timeout)
		dur(at+".max_backoff", ic.MaxBackoff)
	}
	if f.BatchSize < 1 || f.BatchSize > 100_000 {
		add("$.batch_size", "batch_size %d: want 1 to 100000", f.BatchSize)
	}
	if f.Spool.Threshold <= 0 || f.Spool.Threshold >= 1 {
		add("$.spool.threshold", "spool.threshold %g: want a fraction of changes_maxlen between 0 and 1 (e.g. 0.5)", f.Spool.Threshold)
	}
	if f.Spool.MaxBytes.err == nil && f.Spool.MaxBytes.n < 1<<20 {
		add("$.spool.max_bytes", "spool.max_bytes %d: want at least 1MiB", f.Spool.MaxBytes.n)
	}
	names := map[string]bool{}
	for i, t := range f.Embedded.Tiers {
		at := fmt.Sprintf("$.embedded.tiers[%d]", i)
		switch {
		case !nameRE.MatchString(t.Name) || strings.ContainsAny(t.Name, "-"):
			add(at+".name", "tier name %q: want lower-case letters and digits, e.g. 1m", t.Name)
		case names[t.Name]:
			add(at+".name", "tier %q is listed twice", t.Name)
		}
		names[t.Name] = true
		prev := time.Duration(0)
		if i > 0 {
			prev = f.Embedded.Tiers[i-1].Width.D()
		}
		switch w := t.Width.D(); {
		case t.Width.err != nil:
		case w < time.Second || w%time.Second != 0:
			add(at+".width", "tier %s: width %s must be a whole number of seconds, at least 1s", t.Name, w)
		case prev > 0 && w%prev != 0:
			add(at+".width", "tier %s: width %s must be a multiple of the previous tier's %s", t.Name, w, prev)
		}
	}
	backends := map[string]bool{}
	for i, ic := range f.Influx {
		at := fmt.Sprintf("$.influx[%d]", i)
		if !nameRE.MatchString(ic.Name) {
			add(at+".name", "influx name %q: want [a-z0-9_-], e.g. main", ic.Name)
		} else if backends[ic.Name] {
			add(at+".name", "influx %q is listed twice", ic.Name)
		}
		backends[ic.Name] = true
		if u, err := url.Parse(ic.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(at+".url", "influx %s: url %q: want http(s)://host:port", ic.Name, ic.URL)
		}
		if ic.Org == "" {
			add(at, "influx %s: org is required", ic.Name)
		}
		if ic.Bucket == "" {
			add(at, "influx %s: bucket is required", ic.Name)
		}
		if ic.Token != "" && ic.TokenFile != "" {
			add(at+".token_file", "influx %s: give token or token_file, not both", ic.Name)
		}
		if ic.BatchSize < 1 || ic.BatchSize > 1_000_000 {
			add(at+".batch_size", "influx %s: batch_size %d: want 1 to 1000000", ic.Name, ic.BatchSize)
		}
		if !model.LabelName(ic.Measurement).IsValidLegacy() {
			add(at+".measurement", "influx %s: measurement %q: want letters, digits and _", ic.Name, ic.Measurement)
		}
	}
	if len(errs) == 0 && !*f.Embedded.Enabled && len(f.Influx) == 0 {
		add("$.embedded.enabled", "no backend: enable the embedded store or configure an influx server")
	}
	if len(errs) > 0 {
		return File{}, &config.LoadError{Dir: filepath.Dir(path), Errors: errs}
	}
	return f, nil
}

// documents counts the non-empty YAML documents of src and gives the second one's position.
func documents(path string, src []byte) (config.Position, int) {
	pos := config.Position{File: path}
	var file *ast.File
	err := config.GuardYAML(func() (err error) {
		file, err = parser.ParseBytes(src, 0)
		return err
	})
	if err != nil {
		return pos, 0 // DecodeStrict reports the syntax error
	}
	n := 0
	for _, d := range file.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		n++
		if n == 2 {
			if tk := d.Body.GetToken(); tk != nil && tk.Position != nil {
				pos.Line, pos.Column = tk.Position.Line, tk.Position.Column
			}
		}
	}
	return pos, n
}

// position finds the YAML path in src, falling back to its parent and to the file.
func position(path string, src []byte, yamlPath string) config.Position {
	pos := config.Position{File: path}
	var file *ast.File
	err := config.GuardYAML(func() (err error) {
		file, err = parser.ParseBytes(src, 0)
		return err
	})
	if err != nil {
		return pos
	}
	for p := yamlPath; p != "$" && p != ""; {
		yp, err := yaml.PathString(p)
		if err == nil {
			if node, err := yp.FilterFile(file); err == nil && node != nil {
				if tk := node.GetToken(); tk != nil && tk.Position != nil {
					pos.Line, pos.Column = tk.Position.Line, tk.Position.Column
					return pos
				}
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return pos
}

// token returns the influx token: token, token_file, or VOLTAGE_INFLUX_TOKEN_{NAME}.
func (ic InfluxConfig) token() (string, error) {
	if ic.Token != "" {
		return ic.Token, nil
	}
	if ic.TokenFile != "" {
		b, err := os.ReadFile(ic.TokenFile)
		if err != nil {
			return "", fmt.Errorf("influx %s: token_file: %w", ic.Name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	env := "VOLTAGE_INFLUX_TOKEN_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(ic.Name))
	return os.Getenv(env), nil
}
