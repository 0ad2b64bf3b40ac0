package voltctl

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goccy/go-yaml"

	"github.com/voltageems/voltage/shared/config"
)

// The translation of an original VoltageEMS config folder (its config.template
// layout: global.yaml, comsrv/comsrv.yaml, comsrv/{id}/*.csv) into a site folder.
// Everything that is not carried over as it is, is reported with where it was.

// change is one line of the import report.
type change struct {
	pos config.Position
	msg string
}

func (c change) String() string {
	if c.pos.File == "" {
		return c.msg
	}
	return c.pos.String() + ": " + c.msg
}

// outFile is a file the import writes, relative to DST.
type outFile struct {
	rel  string
	data []byte
}

// importer holds one conversion's report.
type importer struct {
	src     string
	changes []change
}

func (im *importer) report(pos config.Position, format string, args ...any) {
	im.changes = append(im.changes, change{pos, fmt.Sprintf(format, args...)})
}

// readYAML reads a source file as an ordered map and keeps its syntax tree for
// positions.
func readYAML(path string) (yaml.MapSlice, *yamlFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	y, err := parseYAMLFile(path, src)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var m yaml.MapSlice
	err = config.GuardYAML(func() error { return yaml.UnmarshalWithOptions(src, &m, yaml.UseOrderedMap()) })
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, y, nil
}

// Why keys of the original are not carried over.
var (
	droppedGlobal = map[string]string{
		"api":   "the API gateway is not part of this build yet; listen addresses go in site.yaml listen:",
		"rules": "rulesrv is not part of this build yet",
	}
	droppedRedis = map[string]string{
		"pool_size":  "connection pools are sized by each service (or add ?pool_size=N to redis.url)",
		"timeout_ms": "timeouts are built in (or add ?dial_timeout=…&read_timeout=… to redis.url)",
		"enabled":    "Redis is always used: it holds the realtime state",
	}
	droppedParams = map[string]string{
		"connect_timeout_ms":  "connecting is bounded by timeout_ms",
		"retry_interval_ms":   "reconnects back off exponentially from 0.5 s to 30 s (DESIGN §11)",
		"rx_poll_interval_ms": "CAN frames are taken as they arrive",
	}
	// renamedParams are the original's parameter names that this version spells
	// differently, per protocol (after di_do → gpio).
	renamedParams = map[string]map[string]string{
		config.ProtocolGPIO: {"driver": "backend", "gpio_base_path": "sysfs_root", "di_poll_interval_ms": "poll_interval_ms"},
		config.ProtocolCAN:  {"device": "interface"},
	}
	channelKeys = map[string]bool{"id": true, "name": true, "description": true, "protocol": true, "enabled": true, "parameters": true}
)

// site converts global.yaml into site.yaml.
func (im *importer) site(siteID string) (outFile, error) {
	redisURL, level := config.DefaultRedisURL, ""
	path := filepath.Join(im.src, "global.yaml")
	g, y, err := readYAML(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		im.report(config.Position{File: path}, "missing; site.yaml gets the default redis.url %s", redisURL)
	case err != nil:
		return outFile{}, err
	}
	for _, kv := range g {
		key := fmt.Sprint(kv.Key)
		switch key {
		case "redis", "logging":
			sub, _ := kv.Value.(yaml.MapSlice)
			for _, skv := range sub {
				skey := fmt.Sprint(skv.Key)
				pos := y.keyPos(key, skey)
				switch {
				case key == "redis" && skey == "url":
					redisURL = fmt.Sprint(skv.Value)
					im.report(pos, "redis.url → site.yaml redis.url")
				case key == "logging" && skey == "level":
					switch lv := fmt.Sprint(skv.Value); lv {
					case "debug", "info", "warn", "error":
						level = lv
						im.report(pos, "logging.level → site.yaml logging.level")
					default:
						im.report(pos, "dropped logging.level %q: want debug, info, warn or error", lv)
					}
				case key == "redis":
					im.report(pos, "dropped redis.%s: %s", skey, cmp.Or(droppedRedis[skey], "not used by this version"))
				default:
					im.report(pos, "dropped logging.%s: services log to stderr; the service manager keeps the logs", skey)
				}
			}
		default:
			im.report(y.keyPos(key), "dropped %s: %s", key, cmp.Or(droppedGlobal[key], "not used by this version"))
		}
	}
	doc := yaml.MapSlice{
		{Key: "site", Value: yaml.MapSlice{{Key: "id", Value: siteID}, {Key: "name", Value: siteID}}},
		{Key: "redis", Value: yaml.MapSlice{{Key: "url", Value: redisURL}}},
	}
	if level != "" {
		doc = append(doc, yaml.MapItem{Key: "logging", Value: yaml.MapSlice{{Key: "level", Value: level}}})
	}
	data, err := marshalYAML("# Site imported by `voltctl import original` from "+path+".\n", doc)
	return outFile{rel: "site.yaml", data: data}, err
}

// channels converts comsrv/comsrv.yaml into comsrv/channels.yaml and returns the
// channel ids it found, as written (for their CSV folders).
func (im *importer) channels() (outFile, map[string]bool, error) {
	path := filepath.Join(im.src, "comsrv", "comsrv.yaml")
	m, y, err := readYAML(path)
	if err != nil {
		return outFile{}, nil, fmt.Errorf("read the original channels: %w", err)
	}
	ids := map[string]bool{}
	var out []any
	for _, kv := range m {
		key := fmt.Sprint(kv.Key)
		if key != "channels" {
			im.report(y.keyPos(key), "dropped %s: comsrv's service parameters are built in", key)
			continue
		}
		list, ok := kv.Value.([]any)
		if !ok && kv.Value != nil {
			return outFile{}, nil, fmt.Errorf("%s: channels: want a list of channels", y.valuePos("channels"))
		}
		for i, item := range list {
			ch, ok := item.(yaml.MapSlice)
			if !ok {
				return outFile{}, nil, fmt.Errorf("%s: channels[%d]: want a mapping", y.valuePos("channels", i), i)
			}
			converted, id := im.channel(y, i, ch)
			if id != "" {
				ids[id] = true
			}
			out = append(out, converted)
		}
	}
	data, err := marshalYAML("# Channels imported by `voltctl import original` from "+path+".\n",
		yaml.MapSlice{{Key: "channels", Value: out}})
	return outFile{rel: filepath.Join("comsrv", "channels.yaml"), data: data}, ids, err
}

// channel converts the i-th channel and returns it with its id as text.
func (im *importer) channel(y *yamlFile, i int, ch yaml.MapSlice) (yaml.MapSlice, string) {
	var id string
	for _, kv := range ch {
		if fmt.Sprint(kv.Key) == "id" {
			id = fmt.Sprint(kv.Value)
		}
	}
	label := "channel " + cmp.Or(id, "#"+strconv.Itoa(i+1))
	protocol := ""
	for _, kv := range ch {
		if fmt.Sprint(kv.Key) == "protocol" {
			protocol = fmt.Sprint(kv.Value)
		}
	}
	if protocol == "di_do" {
		protocol = config.ProtocolGPIO
	}
	var out yaml.MapSlice
	for _, kv := range ch {
		key := fmt.Sprint(kv.Key)
		pos := y.keyPos("channels", i, key)
		switch {
		case key == "logging":
			im.report(pos, "%s: dropped logging: log levels are set per service (site.yaml logging, --log-level)", label)
		case !channelKeys[key]:
			im.report(pos, "%s: dropped %s: not a channel key of this version", label, key)
		case key == "protocol" && fmt.Sprint(kv.Value) == "di_do":
			im.report(y.valuePos("channels", i, key), "%s: protocol di_do → gpio", label)
			out = append(out, yaml.MapItem{Key: key, Value: "gpio"})
		case key == "parameters":
			params, _ := kv.Value.(yaml.MapSlice)
			out = append(out, yaml.MapItem{Key: key, Value: im.parameters(y, i, label, protocol, params)})
		default:
			out = append(out, kv)
		}
	}
	return out, id
}

// parameters translates a channel's parameters, keeping their order.
func (im *importer) parameters(y *yamlFile, i int, label, protocol string, params yaml.MapSlice) yaml.MapSlice {
	has := map[string]bool{}
	for _, kv := range params {
		has[fmt.Sprint(kv.Key)] = true
	}
	out := yaml.MapSlice{}
	for _, kv := range params {
		key := fmt.Sprint(kv.Key)
		pos := y.keyPos("channels", i, "parameters", key)
		switch {
		case key == "read_timeout_ms" && has["timeout_ms"]:
			im.report(pos, "%s: dropped parameters.read_timeout_ms: timeout_ms is given too", label)
		case key == "read_timeout_ms":
			im.report(pos, "%s: parameters.read_timeout_ms → timeout_ms", label)
			out = append(out, yaml.MapItem{Key: "timeout_ms", Value: kv.Value})
		case droppedParams[key] != "":
			im.report(pos, "%s: dropped parameters.%s: %s", label, key, droppedParams[key])
		case renamedParams[protocol][key] != "":
			to := renamedParams[protocol][key]
			im.report(pos, "%s: parameters.%s → %s", label, key, to)
			out = append(out, yaml.MapItem{Key: to, Value: kv.Value})
		default:
			out = append(out, kv)
		}
	}
	return out
}

func marshalYAML(header string, v any) ([]byte, error) {
	b, err := yaml.MarshalWithOptions(v, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return append([]byte(header), b...), nil
}
