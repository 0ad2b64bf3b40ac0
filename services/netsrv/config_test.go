package netsrv_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

// The example shipped in config/ loads and documents every link type.
func TestExampleConfigLoads(t *testing.T) {
	fc, err := netsrv.LoadFile(filepath.Join("..", "..", "config", "netsrv", "netsrv.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, l := range fc.Links {
		types[l.Type] = true
	}
	for _, want := range []string{netsrv.TypeMQTT, netsrv.TypeAWSIoT, netsrv.TypeAliyun, netsrv.TypeHTTP} {
		if !types[want] {
			t.Errorf("example has no %s link", want)
		}
	}
	if fc.SpoolDir != netsrv.DefaultSpoolDir {
		t.Errorf("spool_dir default = %q", fc.SpoolDir)
	}
}

func TestMissingConfigMeansNoLinks(t *testing.T) {
	fc, err := netsrv.LoadFile(filepath.Join(t.TempDir(), "netsrv.yaml"))
	if err != nil || len(fc.Links) != 0 {
		t.Fatalf("got %+v, %v", fc, err)
	}
}

// Every mistake is reported with file:line:col, all at once.
func TestInvalidConfigIsPositioned(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown key", "links:\n  - name: a\n    type: mqtt\n    broker: tcp://h:1\n    qoss: 1\n", []string{"netsrv.yaml:5:"}},
		{"unknown type", "links:\n  - name: a\n    type: kafka\n", []string{"netsrv.yaml:3:11: unknown link type \"kafka\""}},
		{"bad broker and qos", "links:\n  - name: a\n    type: mqtt\n    broker: h:1883\n    qos: 2\n", []string{
			"netsrv.yaml:4:13: broker \"h:1883\"", "netsrv.yaml:5:10: qos 2"}},
		{"duplicate name", "links:\n  - {name: a, type: http, http: {url: 'http://x'}}\n  - {name: a, type: http, http: {url: 'http://x'}}\n", []string{"link name \"a\" is used twice"}},
		{"aws without cert", "links:\n  - name: a\n    type: aws_iot\n    broker: tls://h:8883\n    aws: {thing: t}\n", []string{"netsrv.yaml:2:9: aws_iot link needs tls.cert and tls.key"}},
		{"aliyun without secret", "links:\n  - name: a\n    type: aliyun\n    broker: tls://h:1883\n    aliyun: {product_key: p, device_name: d}\n", []string{"aliyun link needs"}},
		{"bad template", "links:\n  - name: a\n    type: mqtt\n    broker: tcp://h:1\n    template: '{{.Points'\n", []string{"netsrv.yaml:5:15: template:"}},
		{"bad topic template", "links:\n  - name: a\n    type: mqtt\n    broker: tcp://h:1\n    topic: 'x/{{'\n", []string{"topic template"}},
		{"selection", "links:\n  - name: a\n    type: http\n    http: {url: 'http://x'}\n    select:\n      - {channel: 1, instance: 2}\n      - {channel: 1, types: [Q]}\n", []string{
			"netsrv.yaml:6:9: a selection names exactly one", "netsrv.yaml:7:30:"}},
		{"write of telemetry", "links:\n  - name: a\n    type: http\n    http: {url: 'http://x'}\n    allow_write:\n      - {channel: 1, types: [T]}\n", []string{"type T is not writable"}},
		{"allow_write shapes", "links:\n  - name: a\n    type: http\n    http: {url: 'http://x'}\n    allow_write:\n      - {types: [A]}\n      - {instance: 5, points: [1]}\n      - {channel: 1, actions: [x]}\n", []string{
			"netsrv.yaml:6:9: an allow_write rule names exactly one", "netsrv.yaml:7:9: types and points are for channel rules", "netsrv.yaml:8:9: actions are for instance rules"}},
		{"bad alias", "links:\n  - name: a\n    type: http\n    http: {url: 'http://x'}\n    aliases: {P: '1:X:1'}\n", []string{"alias P"}},
		{"downlink on http", "links:\n  - name: a\n    type: http\n    http: {url: 'ftp://x'}\n    downlink: {topic: x}\n", []string{"http.url", "downlink"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("site", "netsrv", "netsrv.yaml")
			_, err := netsrv.Parse(path, []byte(tc.src))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Invalid netsrv.yaml stops Run before anything starts, as a ConfigError (exit 2),
// and so do TLS files that do not load.
func TestRunRefusesInvalidConfig(t *testing.T) {
	s := newSite(t)
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, yaml := range []string{
		"links:\n  - {name: a, type: mqtt, broker: 'tcp://h:1', bogus: 1}\n",
		"links:\n  - {name: a, type: mqtt, broker: 'tls://h:1', tls: {ca: /nonexistent/ca.pem}}\n",
	} {
		s.links(yaml)
		err := netsrv.Run(context.Background(), netsrv.Config{Site: cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(t)})
		var ce *service.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%q: Run returned %v, want a ConfigError", yaml, err)
		}
	}
}
