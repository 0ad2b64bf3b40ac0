package apigateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
	"github.com/voltageems/voltage/tools/voltsim"
)

// e2eSite has one device per way values arrive: an IEC 104 station that pushes
// changes (spontaneous M_ME_NC_1; the poll is a minute so only pushes move it)
// and a Modbus TCP meter polled every 100 ms.
var e2eSite = sitetest.Files{
	"site.yaml": "site: {id: e2e}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: rtu, protocol: iec104, parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 60000}}
  - {id: 2, name: meter, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: {{PORT2}}, poll_interval_ms: 100, timeout_ms: 1000}}
`,
	"comsrv/1/telemetry.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,f,1,0,,0,float\n",
	"comsrv/1/mapping/telemetry_mapping.csv": "point_id,common_address,ioa,type_id\n1,1,100,M_ME_NC_1\n",
	"comsrv/2/telemetry.csv":                 "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,p,1,0,,0,float\n",
	"comsrv/2/mapping/telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,3,0,float32,ABCD,\n",
}

const e2ePoll = 100 * time.Millisecond

// BenchmarkDeviceToWebSocket measures DESIGN §10's end-to-end budget: a value
// changes in the simulated device, and the WebSocket client subscribed to its
// channel receives it — through the real protocol, comsrv, Redis, the gateway's
// hub and the socket. Each iteration is one change per device, awaited before the
// next. The baseline in the same run is the same change arriving at a bare Redis
// pub/sub subscriber (comsrv's part alone), so the ratio is what the gateway adds.
// Budgets: pushed (IEC 104) P99 < 10 ms; polled (Modbus, 100 ms poll) P99 ≤ poll
// interval + 10 ms.
//
//	go test -run '^$' -bench DeviceToWebSocket -benchtime 300x ./services/apigateway/
func BenchmarkDeviceToWebSocket(b *testing.B) {
	rds := testharness.StartRedis(b)
	rdb := rds.Client(b)
	dir, _ := sitetest.Write(b, e2eSite, rds.URL())
	site, err := config.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	sim, err := voltsim.New(site, voltsim.Options{Logger: sitetest.Logger(b), ManualClock: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	addr := make(chan net.Addr, 1)
	set := apigateway.DefaultSettings()
	go func() { done <- sim.Run(ctx) }()
	go func() {
		done <- comsrv.Run(ctx, comsrv.Config{Site: site, ConfigDir: dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(b), ConsumerName: "bench"})
	}()
	go func() {
		done <- apigateway.Run(ctx, apigateway.Config{Site: site, ConfigDir: dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(b), Settings: &set, BcryptCost: bcrypt.MinCost, AdminPassword: adminPassword,
			Out: io.Discard, Bound: func(a net.Addr) { addr <- a }})
	}()
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
	}()
	url := "http://" + (<-addr).String()
	for _, ch := range []uint32{1, 2} {
		testharness.WaitFor(b, 20*time.Second, "channel up", func() bool {
			return rdb.HGet(ctx, keyspace.ChannelStatus(ch), "state").Val() == "up"
		})
	}

	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + benchLogin(b, http.DefaultClient, url)}}})
	if err != nil {
		b.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","channels":[1,2]}`)); err != nil {
		b.Fatal(err)
	}
	frames := make(chan []byte, 1024)
	go func() {
		for {
			_, m, err := ws.Read(ctx)
			if err != nil {
				close(frames)
				return
			}
			frames <- m
		}
	}()
	// The subscription is live once its snapshot arrives.
	select {
	case f := <-frames:
		if !strings.Contains(string(f), `"type":"snapshot"`) && !strings.Contains(string(f), `"type":"welcome"`) {
			b.Fatalf("first frame: %s", f)
		}
	case <-time.After(10 * time.Second):
		b.Fatal("no snapshot within 10 s")
	}
	for len(frames) > 0 {
		<-frames
	}
	sub := rdb.Subscribe(ctx, keyspace.ChannelPoints(1, point.Telemetry), keyspace.ChannelPoints(2, point.Telemetry))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	pubsub := sub.Channel(redis.WithChannelSize(1024))

	var pushedWS, pushedRedis, polledWS, polledRedis []time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := float64(i%1000) + 0.25
		for _, ch := range []uint32{1, 2} {
			start := time.Now()
			if err := sim.SetValue(ch, point.Telemetry, 1, v); err != nil {
				b.Fatal(err)
			}
			atRedis, atWS := awaitBoth(b, pubsub, frames, ch, v)
			if ch == 1 {
				pushedRedis, pushedWS = append(pushedRedis, atRedis.Sub(start)), append(pushedWS, atWS.Sub(start))
			} else {
				polledRedis, polledWS = append(polledRedis, atRedis.Sub(start)), append(polledWS, atWS.Sub(start))
			}
		}
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return ms(d[min(len(d)-1, int(p*float64(len(d))))])
	}
	b.ReportMetric(q(pushedWS, 0.5), "iec104_ws_p50_ms")
	b.ReportMetric(q(pushedWS, 0.99), "iec104_ws_p99_ms")
	b.ReportMetric(q(pushedRedis, 0.99), "iec104_redis_p99_ms")
	b.ReportMetric(q(pushedWS, 0.99)/10, "iec104_p99/budget")
	b.ReportMetric(q(polledWS, 0.5), "modbus_ws_p50_ms")
	b.ReportMetric(q(polledWS, 0.99), "modbus_ws_p99_ms")
	b.ReportMetric(q(polledRedis, 0.99), "modbus_redis_p99_ms")
	b.ReportMetric(q(polledWS, 0.99)/ms(e2ePoll+10*time.Millisecond), "modbus_p99/budget")
	b.ReportMetric(0, "ns/op")
}

// awaitBoth waits until channel ch's point 1 shows v both on Redis pub/sub and
// in a WebSocket frame, and returns when each arrived.
func awaitBoth(b *testing.B, pubsub <-chan *redis.Message, frames <-chan []byte, ch uint32, v float64) (atRedis, atWS time.Time) {
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	key := keyspace.ChannelPoints(ch, point.Telemetry)
	for atRedis.IsZero() || atWS.IsZero() {
		select {
		case m := <-pubsub:
			var msg struct{ V map[string]float64 }
			if m.Channel == key && json.Unmarshal([]byte(m.Payload), &msg) == nil && msg.V["1"] == v {
				atRedis = time.Now()
			}
		case f, ok := <-frames:
			if !ok {
				b.Fatal("the WebSocket closed")
			}
			var frame struct {
				Type   string
				Values []struct {
					Channel uint32
					Point   uint32
					Value   *float64
				}
			}
			if json.Unmarshal(f, &frame) != nil || frame.Type != "changes" {
				continue
			}
			for _, x := range frame.Values {
				if x.Channel == ch && x.Point == 1 && x.Value != nil && *x.Value == v {
					atWS = time.Now()
				}
			}
		case <-timeout.C:
			b.Fatalf("channel %d value %v: redis at %v, websocket at %v — not both within 10 s", ch, v, atRedis, atWS)
		}
	}
	return atRedis, atWS
}
