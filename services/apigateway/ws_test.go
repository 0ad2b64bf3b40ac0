package apigateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/tools/sitetest"
)

// modbusSite is one Modbus TCP device served by voltsim.
var modbusSite = sitetest.Files{
	"site.yaml": "site: {id: gw-site, name: Gateway test}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - id: 1
    name: pcs
    protocol: modbus_tcp
    parameters: {host: 127.0.0.1, port: {{PORT}}, poll_interval_ms: 100, timeout_ms: 1000}
`,
	"comsrv/1/telemetry.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,power,0.1,0,kW,0,float\n",
	"comsrv/1/mapping/telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,4,0,uint16,AB,\n",
}

type wsFrame struct {
	Type   string `json:"type"`
	Error  string `json:"error"`
	Values []struct {
		Channel uint32   `json:"channel"`
		Type    string   `json:"type"`
		Point   uint32   `json:"point"`
		Value   *float64 `json:"value"`
		Quality string   `json:"quality"`
	} `json:"values"`
}

func (g *gw) dial(token string) *websocket.Conn {
	g.t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		g.t.Fatalf("dial /ws: %v", err)
	}
	c.SetReadLimit(64 << 20)
	g.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func wsSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

// wsUntil reads frames until ok accepts one, or fails after timeout.
func wsUntil(t *testing.T, c *websocket.Conn, timeout time.Duration, what string, ok func(wsFrame) bool) wsFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		var f wsFrame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("bad frame %s: %v", b, err)
		}
		if ok(f) {
			return f
		}
	}
}

func hasValue(f wsFrame, ch uint32, typ string, id uint32, v float64) bool {
	for _, x := range f.Values {
		if x.Channel == ch && x.Type == typ && x.Point == id && x.Value != nil && *x.Value == v {
			return true
		}
	}
	return false
}

func TestWSSubscriberSeesDeviceChange(t *testing.T) {
	site := sitetest.New(t, modbusSite)
	site.StartDevices()
	g := startGateway(t, site)
	viewer := g.user("wendy", "viewer")

	c := g.dial(viewer)
	wsUntil(t, c, 10*time.Second, "welcome", func(f wsFrame) bool { return f.Type == "welcome" })
	wsSend(t, c, map[string]any{"type": "subscribe", "channels": []uint32{1}})
	wsUntil(t, c, 10*time.Second, "snapshot", func(f wsFrame) bool { return f.Type == "snapshot" })
	if err := site.Sim.SetValue(1, point.Telemetry, 1, 42.5); err != nil {
		t.Fatal(err)
	}
	wsUntil(t, c, 20*time.Second, "the device's new value", func(f wsFrame) bool {
		return f.Type == "changes" && hasValue(f, 1, "T", 1, 42.5)
	})

	// Subscriptions are checked against the role: command results need operator.
	wsSend(t, c, map[string]any{"type": "subscribe", "commands": true})
	f := wsUntil(t, c, 10*time.Second, "refusal", func(f wsFrame) bool { return f.Type == "error" })
	if !strings.Contains(f.Error, "operator") {
		t.Fatalf("refusal says %q", f.Error)
	}
	wsSend(t, c, map[string]any{"type": "subscribe", "points": []string{"1:Q:*"}})
	wsUntil(t, c, 10*time.Second, "bad pattern", func(f wsFrame) bool { return f.Type == "error" })

	// A browser authenticates with its first message; a pattern subscription gets
	// a snapshot of the current value.
	b := g.dial("")
	wsSend(t, b, map[string]any{"type": "auth", "token": viewer})
	wsUntil(t, b, 10*time.Second, "welcome", func(f wsFrame) bool { return f.Type == "welcome" })
	wsSend(t, b, map[string]any{"type": "subscribe", "points": []string{"1:T:1"}})
	wsUntil(t, b, 10*time.Second, "snapshot with the value", func(f wsFrame) bool {
		return f.Type == "snapshot" && hasValue(f, 1, "T", 1, 42.5)
	})
}

func TestWSAuthentication(t *testing.T) {
	g := newGateway(t, func(c *apigatewayConfig) { c.Settings.WebSocket.Heartbeat = "200ms" })
	// A bad header token is refused before the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer forged"}}})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("forged header token: err %v resp %v", err, resp)
	}
	// A bad first-message token closes the connection with a policy violation.
	c := g.dial("")
	wsSend(t, c, map[string]any{"type": "auth", "token": "forged"})
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("forged first-message token: %v", err)
	}
	// So does a first message that is not auth.
	c2 := g.dial("")
	wsSend(t, c2, map[string]any{"type": "subscribe", "channels": []uint32{1}})
	_, _, err = c2.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("subscribe before auth: %v", err)
	}
	// Heartbeats come, and a revoked user's connection ends at the next one.
	tok := g.user("hugo", "viewer")
	c3 := g.dial(tok)
	wsUntil(t, c3, 10*time.Second, "heartbeat", func(f wsFrame) bool { return f.Type == "heartbeat" })
	g.expect(g.do("PATCH", "/users/hugo", g.admin(), map[string]string{"password": "a-new-password"}), 200)
	for {
		_, _, err := c3.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("revoked user's connection ended with %v", err)
			}
			break
		}
	}
}

// TestWSStalledSubscriberDropped: a client that stops reading is dropped, and a
// client subscribed to the same changes keeps getting every batch meanwhile.
func TestWSStalledSubscriberDropped(t *testing.T) {
	site := sitetest.New(t, virtualSite)
	g := startGateway(t, site, func(c *apigatewayConfig) {
		c.Settings.WebSocket.WriteTimeout = "500ms"
		c.Settings.WebSocket.FlushInterval = "20ms"
	})
	tok := g.admin()
	stalled, live := g.dial(tok), g.dial(tok)
	for _, c := range []*websocket.Conn{stalled, live} {
		wsUntil(t, c, 10*time.Second, "welcome", func(f wsFrame) bool { return f.Type == "welcome" })
		wsSend(t, c, map[string]any{"type": "subscribe", "channels": []uint32{1}})
		wsUntil(t, c, 10*time.Second, "snapshot", func(f wsFrame) bool { return f.Type == "snapshot" })
	}
	// From here on the stalled client reads nothing. Batches of 2,000 points make
	// frames of ~150 kB, which fill its socket buffers quickly.
	const points = 2000
	store := statestore.NewWriter(site.RDB, 0)
	dropped := regexp.MustCompile(`apigateway_ws_dropped_total\{reason="slow"\} ([0-9]+)`)
	var worst time.Duration
	deadline := time.Now().Add(60 * time.Second) // a loaded machine drains sockets slowly
	for i := 1; ; i++ {
		samples := make([]point.Sample, points)
		for p := range samples {
			samples[p] = point.Sample{ID: point.ID(p + 1), Value: float64(i)}
		}
		start := time.Now()
		if err := store.Write(t.Context(), statestore.ChannelBatch(1, point.Telemetry, time.Now().UnixMilli(), samples)); err != nil {
			t.Fatal(err)
		}
		wsUntil(t, live, 10*time.Second, fmt.Sprintf("batch %d at the live client", i), func(f wsFrame) bool {
			return f.Type == "changes" && hasValue(f, 1, "T", points, float64(i))
		})
		worst = max(worst, time.Since(start))
		m := dropped.FindStringSubmatch(string(g.do("GET", "/metrics", "", nil).body))
		if m != nil && m[1] != "0" {
			t.Logf("stalled client dropped after %d batches; worst delivery to the live client %v", i, worst)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client was not dropped within 60 s (%d batches); metrics:\n%s", i,
				regexp.MustCompile(`(?m)^apigateway_ws_.*$`).FindAllString(string(g.do("GET", "/metrics", "", nil).body), -1))
		}
	}
	// The stalled client finds its connection closed once it reads again.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := stalled.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the stalled client's connection is still open")
			}
			break
		}
	}
	// The live client is unaffected.
	if err := store.Write(t.Context(), statestore.ChannelBatch(1, point.Telemetry, time.Now().UnixMilli(), []point.Sample{{ID: 1, Value: -1}})); err != nil {
		t.Fatal(err)
	}
	wsUntil(t, live, 10*time.Second, "a batch after the drop", func(f wsFrame) bool { return hasValue(f, 1, "T", 1, -1) })
}
