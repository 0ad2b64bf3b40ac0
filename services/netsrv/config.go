package netsrv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Link types.
const (
	TypeAWSIoT = "aws_iot"
	TypeAliyun = "aliyun"
	TypeMQTT   = "mqtt"
	TypeHTTP   = "http"
)

// Payload formats.
const (
	FormatJSON     = "json"
	FormatCompact  = "compact"
	FormatTemplate = "template"
)

// MQTT protocol versions a link can speak.
const (
	MQTT5   = "5"
	MQTT311 = "3.1.1"
)

// Defaults.
const (
	DefaultMaxPayload    = 128 * 1024 // AWS IoT Core's message size limit
	DefaultSpoolAfter    = 30 * time.Second
	DefaultReplayRate    = 200 // messages per second while draining the spool
	DefaultSpoolMaxBytes = 256 << 20
	DefaultBatchEntries  = 1000
	DefaultHTTPTimeout   = 10 * time.Second
	DefaultPublishWait   = 10 * time.Second
	DefaultSpoolDir      = "data/netsrv"
)

// FileConfig is config/netsrv/netsrv.yaml.
type FileConfig struct {
	// SpoolDir holds one spool folder per link; a relative path is taken from the
	// working directory. Default DefaultSpoolDir.
	SpoolDir string       `yaml:"spool_dir"`
	Links    []LinkConfig `yaml:"links"`
}

// LinkConfig is one cloud link.
type LinkConfig struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"` // aws_iot | aliyun | mqtt | http
	Enabled *bool  `yaml:"enabled"`

	// MQTT links (aws_iot, aliyun, mqtt).
	Broker    string `yaml:"broker"`   // tcp://host:1883, mqtt://, ssl://, tls://host:8883
	Protocol  string `yaml:"protocol"` // "5" (default) or "3.1.1"
	ClientID  string `yaml:"client_id"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	KeepAlive int    `yaml:"keepalive_s"` // default 30
	TLS       *TLS   `yaml:"tls"`
	QoS       *int   `yaml:"qos"`    // 0 or 1, default 1
	Retain    bool   `yaml:"retain"` // retain flag on telemetry

	Topic    string    `yaml:"topic"` // telemetry topic template
	Downlink *Downlink `yaml:"downlink"`

	AWS    *AWS    `yaml:"aws"`
	Aliyun *Aliyun `yaml:"aliyun"`
	HTTP   *HTTP   `yaml:"http"`

	Select     []Selection       `yaml:"select"`
	Aliases    map[string]string `yaml:"aliases"`     // payload name → "channel:type:point" or "inst:id:type:point"
	WindowMS   int               `yaml:"window_ms"`   // aggregation window; 0 = forward each change
	Deadband   float64           `yaml:"deadband"`    // absolute; 0 = every change
	Format     string            `yaml:"format"`      // json | compact | template
	Template   string            `yaml:"template"`    // Go text/template, format: template
	MaxPayload int               `yaml:"max_payload"` // bytes per message; default 131072

	AllowWrite   []WriteRule `yaml:"allow_write"`
	WriteTimeout int         `yaml:"write_timeout_s"` // how long a downlink waits for the command result (default 30)

	Spool      SpoolConfig `yaml:"spool"`
	ReplayRate float64     `yaml:"replay_rate"` // messages/s while draining the spool

	tmpl      *template.Template
	topicTmpl *template.Template
}

// TLS is a link's TLS material (files).
type TLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Downlink enables cloud writes on an mqtt link.
type Downlink struct {
	Topic      string `yaml:"topic"`       // subscribed topic (wildcards allowed)
	ReplyTopic string `yaml:"reply_topic"` // where results go; default {topic}/reply
}

// AWS is the AWS IoT Core profile.
type AWS struct {
	Thing  string `yaml:"thing"`  // thing name; also the client id
	Shadow bool   `yaml:"shadow"` // also report the latest values to the device shadow
}

// Aliyun is the Aliyun IoT Platform device identity.
type Aliyun struct {
	ProductKey   string `yaml:"product_key"`
	DeviceName   string `yaml:"device_name"`
	DeviceSecret string `yaml:"device_secret"`
	ClientID     string `yaml:"client_id"` // default: device name
	Downlink     *bool  `yaml:"downlink"`  // subscribe to property/set (default true)
}

// HTTP is a webhook endpoint.
type HTTP struct {
	URL       string            `yaml:"url"`
	Headers   map[string]string `yaml:"headers"`
	TimeoutMS int               `yaml:"timeout_ms"`
}

// Selection picks points of one channel or instance.
type Selection struct {
	Channel  *uint32  `yaml:"channel"`
	Instance *uint32  `yaml:"instance"`
	Types    []string `yaml:"types"`  // default: every type
	Points   []uint32 `yaml:"points"` // default: every point
}

// WriteRule allows cloud writes to control/adjustment points of one channel, or
// to actions of one instance (routed by modsrv).
type WriteRule struct {
	Channel  *uint32  `yaml:"channel"`
	Types    []string `yaml:"types"`  // C and/or A; default both
	Points   []uint32 `yaml:"points"` // default: every point of those types
	Instance *uint32  `yaml:"instance"`
	Actions  []string `yaml:"actions"` // default: every action of the instance
}

// SpoolConfig bounds a link's on-disk spool.
type SpoolConfig struct {
	MaxBytes int64 `yaml:"max_bytes"` // default 256 MiB
	MaxAgeS  int   `yaml:"max_age_s"` // 0 = keep until the cap
	AfterS   *int  `yaml:"after_s"`   // outage length before the backlog moves to disk (default 30)
	// AfterEntries moves the backlog to disk earlier, once this many entries wait
	// in the stream (default: half of redis.changes_maxlen), so the capped stream
	// never trims entries the link has not read.
	AfterEntries int64 `yaml:"after_entries"`
}

// IsEnabled reports whether the link runs (default true).
func (l *LinkConfig) IsEnabled() bool { return l.Enabled == nil || *l.Enabled }

// QoSLevel is the configured QoS (default 1).
func (l *LinkConfig) QoSLevel() byte {
	if l.QoS == nil {
		return 1
	}
	return byte(*l.QoS)
}

// SpoolAfter is how long an outage lasts before the backlog goes to disk.
func (l *LinkConfig) SpoolAfter() time.Duration {
	if l.Spool.AfterS == nil {
		return DefaultSpoolAfter
	}
	return time.Duration(*l.Spool.AfterS) * time.Second
}

// ConfigPath is where netsrv.yaml lives in a site folder.
func ConfigPath(dir string) string { return filepath.Join(dir, "netsrv", "netsrv.yaml") }

// LoadFile reads and validates netsrv.yaml. A missing file means no links.
// Every problem is reported as file:line:col.
func LoadFile(path string) (*FileConfig, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &FileConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, src)
}

// Parse decodes and validates netsrv.yaml's content.
func Parse(path string, src []byte) (*FileConfig, error) {
	var fc FileConfig
	if pe := config.DecodeStrict(path, src, &fc); pe != nil {
		return nil, pe
	}
	v := validator{path: path, src: src}
	v.validate(&fc)
	if len(v.errs) > 0 {
		return nil, &config.LoadError{Dir: filepath.Dir(path), Errors: v.errs}
	}
	if fc.SpoolDir == "" {
		fc.SpoolDir = DefaultSpoolDir
	}
	return &fc, nil
}

type validator struct {
	path string
	src  []byte
	errs []*config.PosError
	file any // *ast.File, parsed lazily for positions
}

// at reports msg at the YAML path p (e.g. "$.links[0].type").
func (v *validator) at(p string, format string, args ...any) {
	pos := config.Position{File: v.path}
	if yp, err := yaml.PathString(p); err == nil {
		if f, err := parser.ParseBytes(v.src, 0); err == nil {
			if n, err := yp.FilterFile(f); err == nil && n != nil {
				tk := n.GetToken()
				if tk != nil && tk.Position != nil {
					pos.Line, pos.Column = tk.Position.Line, tk.Position.Column
				}
			}
		}
	}
	v.errs = append(v.errs, &config.PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) validate(fc *FileConfig) {
	names := map[string]bool{}
	for i := range fc.Links {
		l := &fc.Links[i]
		p := fmt.Sprintf("$.links[%d]", i)
		switch {
		case l.Name == "":
			v.at(p, "link %d: name is required", i)
		case !validName(l.Name):
			v.at(p+".name", "link name %q: use letters, digits, '-' and '_' only", l.Name)
		case names[l.Name]:
			v.at(p+".name", "link name %q is used twice", l.Name)
		}
		names[l.Name] = true
		v.validateLink(p, l)
	}
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

func (v *validator) validateLink(p string, l *LinkConfig) {
	mqtt := false
	switch l.Type {
	case TypeAWSIoT:
		mqtt = true
		if l.AWS == nil || l.AWS.Thing == "" {
			v.at(p, "aws_iot link needs aws.thing (the thing name)")
		}
		if l.TLS == nil || l.TLS.Cert == "" || l.TLS.Key == "" {
			v.at(p, "aws_iot link needs tls.cert and tls.key (mutual TLS)")
		}
	case TypeAliyun:
		mqtt = true
		if a := l.Aliyun; a == nil || a.ProductKey == "" || a.DeviceName == "" || a.DeviceSecret == "" {
			v.at(p, "aliyun link needs aliyun.product_key, aliyun.device_name and aliyun.device_secret")
		}
		if l.Topic != "" {
			v.at(p+".topic", "aliyun links post to the Alink property topic; topic is not used")
		}
	case TypeMQTT:
		mqtt = true
	case TypeHTTP:
		if l.HTTP == nil || l.HTTP.URL == "" {
			v.at(p, "http link needs http.url")
		} else if !strings.HasPrefix(l.HTTP.URL, "http://") && !strings.HasPrefix(l.HTTP.URL, "https://") {
			v.at(p+".http.url", "http.url %q must start with http:// or https://", l.HTTP.URL)
		}
	case "":
		v.at(p, "type is required (aws_iot, aliyun, mqtt or http)")
	default:
		v.at(p+".type", "unknown link type %q (want aws_iot, aliyun, mqtt or http)", l.Type)
	}
	if mqtt {
		if l.Broker == "" {
			v.at(p, "broker is required (e.g. tls://host:8883)")
		} else if !hasAnyPrefix(l.Broker, "tcp://", "mqtt://", "ssl://", "tls://", "mqtts://") {
			v.at(p+".broker", "broker %q: want tcp://, mqtt://, tls://, ssl:// or mqtts:// host:port", l.Broker)
		}
		switch l.Protocol {
		case "", MQTT5, MQTT311:
		default:
			v.at(p+".protocol", "protocol %q: want \"5\" or \"3.1.1\"", l.Protocol)
		}
		if l.QoS != nil && *l.QoS != 0 && *l.QoS != 1 {
			v.at(p+".qos", "qos %d: want 0 or 1", *l.QoS)
		}
		if l.HTTP != nil {
			v.at(p+".http", "http settings on an %s link", l.Type)
		}
	} else if l.Type == TypeHTTP {
		if l.Broker != "" || l.Downlink != nil {
			v.at(p, "broker and downlink are for MQTT links")
		}
	}
	if l.Type != TypeMQTT && l.Downlink != nil {
		v.at(p+".downlink", "downlink topics are configurable on mqtt links only (aliyun uses property/set)")
	}
	if l.Downlink != nil && l.Downlink.Topic == "" {
		v.at(p+".downlink", "downlink.topic is required")
	}
	if l.TLS != nil && (l.TLS.Cert == "") != (l.TLS.Key == "") {
		v.at(p+".tls", "tls.cert and tls.key go together")
	}
	if l.WindowMS < 0 {
		v.at(p+".window_ms", "window_ms must not be negative")
	}
	if l.Deadband < 0 {
		v.at(p+".deadband", "deadband must not be negative")
	}
	if l.MaxPayload < 0 {
		v.at(p+".max_payload", "max_payload must not be negative")
	}
	if l.MaxPayload == 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.ReplayRate < 0 {
		v.at(p+".replay_rate", "replay_rate must not be negative")
	}
	if l.ReplayRate == 0 {
		l.ReplayRate = DefaultReplayRate
	}
	if l.Spool.MaxBytes < 0 || l.Spool.MaxAgeS < 0 || l.Spool.AfterEntries < 0 || (l.Spool.AfterS != nil && *l.Spool.AfterS < 0) {
		v.at(p+".spool", "spool limits must not be negative")
	}
	if l.Spool.MaxBytes == 0 {
		l.Spool.MaxBytes = DefaultSpoolMaxBytes
	}
	switch l.Format {
	case "":
		l.Format = FormatJSON
		if l.Template != "" {
			l.Format = FormatTemplate
		}
	case FormatJSON, FormatCompact:
		if l.Template != "" {
			v.at(p+".template", "template is set but format is %q; use format: template", l.Format)
		}
	case FormatTemplate:
		if l.Template == "" {
			v.at(p+".format", "format template needs a template")
		}
	default:
		v.at(p+".format", "unknown format %q (want json, compact or template)", l.Format)
	}
	if l.Template != "" {
		t, err := template.New(l.Name).Funcs(templateFuncs).Parse(l.Template)
		if err != nil {
			v.at(p+".template", "template: %v", err)
		}
		l.tmpl = t
	}
	if l.Type == TypeMQTT || l.Type == TypeAWSIoT {
		if l.Topic == "" {
			l.Topic = DefaultTopic
		}
		t, err := template.New(l.Name + ".topic").Funcs(templateFuncs).Option("missingkey=error").Parse(l.Topic)
		if err != nil {
			v.at(p+".topic", "topic template: %v", err)
		}
		l.topicTmpl = t
	}
	for j, s := range l.Select {
		sp := fmt.Sprintf("%s.select[%d]", p, j)
		if (s.Channel == nil) == (s.Instance == nil) {
			v.at(sp, "a selection names exactly one of channel or instance")
		}
		for k, t := range s.Types {
			if _, err := selectionType(s.Instance != nil, t); err != nil {
				v.at(fmt.Sprintf("%s.types[%d]", sp, k), "%v", err)
			}
		}
	}
	for name, target := range l.Aliases {
		if _, err := parseWriteTarget(target); err != nil {
			v.at(p+".aliases."+name, "alias %s: %v", name, err)
		}
	}
	if l.WriteTimeout < 0 {
		v.at(p+".write_timeout_s", "write_timeout_s must not be negative")
	}
	for j, w := range l.AllowWrite {
		wp := fmt.Sprintf("%s.allow_write[%d]", p, j)
		if (w.Channel == nil) == (w.Instance == nil) {
			v.at(wp, "an allow_write rule names exactly one of channel or instance")
		}
		if w.Instance != nil && (len(w.Types) > 0 || len(w.Points) > 0) {
			v.at(wp, "types and points are for channel rules; instance rules list actions")
		}
		if w.Channel != nil && len(w.Actions) > 0 {
			v.at(wp, "actions are for instance rules")
		}
		for k, t := range w.Types {
			pt, err := point.ParseType(t)
			if err == nil && pt != point.Control && pt != point.Adjustment {
				err = fmt.Errorf("type %s is not writable (want C or A)", t)
			}
			if err != nil {
				v.at(fmt.Sprintf("%s.allow_write[%d].types[%d]", p, j, k), "%v", err)
			}
		}
	}
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

// selectionType parses a type in a selection: T/S/C/A (and aliases) for channels,
// M/A for instances.
func selectionType(instance bool, s string) (string, error) {
	if instance {
		switch strings.ToUpper(s) {
		case "M", "MEASUREMENT", "MEASUREMENTS":
			return "M", nil
		case "A", "ACTION", "ACTIONS":
			return "A", nil
		}
		return "", fmt.Errorf("instance type %q: want M or A", s)
	}
	t, err := point.ParseType(s)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}
