package comsrv_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

func postAs(t *testing.T, url, user string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set(httpapi.HeaderUser, user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestChannelEnableDisableRestart drives the channel control API: disabling is
// written into channels.yaml (comments kept) and stops the link, enabling brings
// it back, a restart reconnects one channel only, a change the folder refuses is
// undone on disk, and each change is in audit:log with the user.
func TestChannelEnableDisableRestart(t *testing.T) {
	fs := files{"comsrv/channels.yaml": `# two meters
channels:
  - {id: 1, name: one, protocol: modbus_tcp, enabled: true, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100}}
  - id: 2 # the second
    name: two
    protocol: modbus_tcp
    parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 100}
`,
		"comsrv/1/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n", "comsrv/1/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n",
		"comsrv/2/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n", "comsrv/2/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,0,uint16,,\n",
	}
	s := startStack(t, fs)
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	s.waitField(keyspace.ChannelStatus(2), "state", "up")
	path := filepath.Join(s.dir, "comsrv", "channels.yaml")

	if code, body := postAs(t, s.httpURL+"/channels/2/disable", "erin"); code != 200 || !strings.Contains(body, `"state":"disabled"`) {
		t.Fatalf("disable: %d %s", code, body)
	}
	s.waitField(keyspace.ChannelStatus(2), "state", "disabled")
	src, _ := os.ReadFile(path)
	if !strings.Contains(string(src), "  - id: 2 # the second\n    enabled: false\n") || !strings.HasPrefix(string(src), "# two meters\n") {
		t.Fatalf("channels.yaml after disable:\n%s", src)
	}
	// The device changes; a disabled channel does not follow.
	if err := s.sim.SetValue(2, point.Telemetry, 1, 9); err != nil {
		t.Fatal(err)
	}
	_ = s.sim.SetValue(1, point.Telemetry, 1, 4)
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "4")
	if got := s.hget(keyspace.ChannelPoints(2, point.Telemetry), "1"); got == "9" {
		t.Fatal("a disabled channel kept polling")
	}

	if code, body := postAs(t, s.httpURL+"/channels/2/enable", "erin"); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	s.waitField(keyspace.ChannelPoints(2, point.Telemetry), "1", "9")
	src, _ = os.ReadFile(path)
	if !strings.Contains(string(src), "    enabled: true\n") {
		t.Fatalf("channels.yaml after enable:\n%s", src)
	}

	// Restart channel 1 only.
	started1 := s.hget(keyspace.ChannelStatus(1), "started")
	started2 := s.hget(keyspace.ChannelStatus(2), "started")
	if code, body := postAs(t, s.httpURL+"/channels/1/restart", "otto"); code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	testharness.WaitFor(t, 5*time.Second, "channel 1 restarted", func() bool {
		return s.hget(keyspace.ChannelStatus(1), "started") != started1
	})
	s.waitField(keyspace.ChannelStatus(1), "state", "up")
	if got := s.hget(keyspace.ChannelStatus(2), "started"); got != started2 {
		t.Error("restarting channel 1 restarted channel 2")
	}

	// Unknown channels, and a change the folder refuses (another file is broken):
	// 422, and channels.yaml is as it was.
	if code, _ := postAs(t, s.httpURL+"/channels/7/disable", "erin"); code != 404 {
		t.Fatalf("unknown channel: %d", code)
	}
	if code, _ := postAs(t, s.httpURL+"/channels/x/restart", "erin"); code != 404 {
		t.Fatalf("bad channel id: %d", code)
	}
	before, _ := os.ReadFile(path)
	writeFile(t, s.dir, "comsrv/1/telemetry.csv", pointHeader+"1,a,x,0,,0,float,\n")
	if code, body := postAs(t, s.httpURL+"/channels/2/disable", "erin"); code != 422 || !strings.Contains(body, "telemetry.csv") {
		t.Fatalf("refused change: %d %s", code, body)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("a refused change stayed on disk:\n%s", after)
	}
	if got := s.hget(keyspace.ChannelStatus(2), "state"); got == "disabled" {
		t.Fatal("a refused change was applied")
	}

	entries, err := s.rdb.XRange(t.Context(), keyspace.Audit, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if a, _ := e.Values["action"].(string); strings.HasPrefix(a, "channel_") {
			got = append(got, a+":"+e.Values["channel"].(string)+":"+e.Values["user"].(string))
		}
	}
	want := "channel_disable:2:erin channel_enable:2:erin channel_restart:1:otto"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit:log channel entries %v, want %s", got, want)
	}
}
