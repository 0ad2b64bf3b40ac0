package comsrv_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

// runMain runs comsrv's main body on a site folder, as the binary would.
func runMain(t *testing.T, dir string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- service.Main("comsrv", []string{"--config", dir}, &stderr, func(ctx context.Context, env service.Env) error {
			return comsrv.Run(ctx, comsrv.Config{Site: env.Config, ConfigDir: env.ConfigDir, HTTPAddr: "127.0.0.1:0", Log: env.Log})
		})
	}()
	select {
	case code := <-done:
		return code, stderr.String()
	case <-time.After(10 * time.Second):
		t.Fatal("comsrv started on an invalid configuration (still running after 10 s)")
		return 0, ""
	}
}

func TestBadConfigurationRefusesToStart(t *testing.T) {
	good := files{
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: dev, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: 1502}}
`,
		"comsrv/1/telemetry.csv":                 pointHeader + "1,a,1,0,,0,float,\n2,b,1,0,,0,float,\n",
		"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n2,1,3,1,uint16,,\n",
	}
	cases := []struct {
		name, file, content, want string
	}{
		{"malformed CSV row", "comsrv/1/telemetry.csv", pointHeader + "1,a,1,0,,0,float,\n2,\"b,1,0,,0,float,\n", "telemetry.csv:3"},
		{"unknown data type", "comsrv/1/mapping/telemetry_mapping.csv", mappingHeader + "1,1,3,0,uint16,,\n2,1,3,1,uint17,,\n", "telemetry_mapping.csv:3"},
		{"duplicate point id", "comsrv/1/telemetry.csv", pointHeader + "1,a,1,0,,0,float,\n1,b,1,0,,0,float,\n", "telemetry.csv:3"},
		{"unknown YAML key", "comsrv/channels.yaml", "channels:\n  - {id: 1, name: dev, protocol: modbus_tcp, enabled: true, colour: red,\n     parameters: {host: 127.0.0.1}}\n", "channels.yaml:2"},
		{"unknown driver parameter", "comsrv/channels.yaml", "channels:\n  - id: 1\n    name: dev\n    protocol: modbus_tcp\n    enabled: true\n    parameters: {host: 127.0.0.1, pol_interval_ms: 100}\n", "channels.yaml:6"},
		{"invalid driver parameter", "comsrv/channels.yaml", "channels:\n  - {id: 1, name: dev, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, max_registers: 500}}\n", "max_registers 500"},
		{"unknown protocol", "comsrv/channels.yaml", "channels:\n  - {id: 1, name: dev, protocol: profibus, enabled: true}\n", "channels.yaml:2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := testharness.StartRedis(t)
			fs := files{}
			for k, v := range good {
				fs[k] = v
			}
			fs[tc.file] = tc.content
			dir := writeSite(t, fs, r.URL(), map[string]int{})
			code, out := runMain(t, dir)
			if code != service.ExitConfig {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, service.ExitConfig, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("error output does not name %q:\n%s", tc.want, out)
			}
			if n := r.Client(t).DBSize(context.Background()).Val(); n != 0 {
				t.Fatalf("comsrv wrote %d keys to Redis on an invalid configuration", n)
			}
		})
	}
}

func TestReloadAppliesChangedChannelsOnly(t *testing.T) {
	fs := files{"comsrv/channels.yaml": `channels:
  - {id: 1, name: one, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100}}
  - {id: 2, name: two, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 100}}
`,
		"comsrv/1/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n", "comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n",
		"comsrv/2/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n", "comsrv/2/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n",
	}
	s := startStack(t, fs)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	s.waitField(keyspace.ChannelStatus(2), "state", "up")
	_ = s.sim.SetValue(2, point.Telemetry, 1, 5)
	s.waitField(keyspace.ChannelPoints(2, point.Telemetry), "1", "5")
	started1 := s.hget(keyspace.ChannelStatus(1), "started")
	started2 := s.hget(keyspace.ChannelStatus(2), "started")

	// An invalid edit is refused and changes nothing.
	writeFile(t, s.dir, "comsrv/2/telemetry.csv", pointHeader+"1,a,1,0,,0,float,\n2,b,x,0,,0,float,\n")
	if code, body := postReload(t, s); code != http.StatusUnprocessableEntity || !strings.Contains(body, "telemetry.csv:3") {
		t.Fatalf("invalid reload: %d %s", code, body)
	}
	// A valid edit to channel 2 (new scale) restarts channel 2 only.
	writeFile(t, s.dir, "comsrv/2/telemetry.csv", pointHeader+"1,a,10,0,,0,float,\n")
	if code, body := postReload(t, s); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	s.waitField(keyspace.ChannelPoints(2, point.Telemetry), "1", "50")
	// Channel 2 was restarted, channel 1 kept running with its connection.
	testharness.WaitFor(t, 5*time.Second, "channel 2 to restart", func() bool {
		return s.hget(keyspace.ChannelStatus(2), "started") != started2
	})
	if got := s.hget(keyspace.ChannelStatus(1), "started"); got != started1 {
		t.Errorf("channel 1 was restarted by a reload that did not change it (started %s, was %s)", got, started1)
	}
}
