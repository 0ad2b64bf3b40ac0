package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
	"github.com/voltageems/voltage/tools/sitetest"
)

const siteID = "site-a"

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// virtualSite has two virtual channels with T and S points, and C/A points on
// channel 1 for the downlink's checks.
var virtualSite = sitetest.Files{
	"site.yaml": "site: {id: " + siteID + ", name: Site A}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs, protocol: virtual}
  - {id: 2, name: meter, protocol: virtual}
`,
	"comsrv/1/telemetry.csv":  "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,p,1,0,kW,0,float\n2,q,1,0,kvar,0,float\n3,u,1,0,V,0,float\n",
	"comsrv/1/signal.csv":     "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,run,1,0,,0,bool\n",
	"comsrv/1/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type,control_type\n1,start,1,0,,0,bool,latching\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,limit,1,0,%,0,float,0,100\n2,mode,1,0,,0,int,0,4\n",
	"comsrv/2/telemetry.csv":  "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,p,1,0,kW,0,float\n2,e,1,0,kWh,0,float\n",
}

// testConfig is the default uplink.yaml with a stream that fits the test
// server's small JetStream store.
func testConfig() Config {
	c := DefaultConfig()
	c.Stream.MaxMB = 64
	return c
}

// env is a site for the bridge's tests: a real Redis with the site loaded, and
// an embedded NATS server with JetStream under the site's domain.
type env struct {
	t     *testing.T
	site  *sitetest.Site
	rdb   *redis.Client
	store *statestore.Writer
	nats  *testharness.NATS
	nc    *nats.Conn
	js    jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := sitetest.New(t, virtualSite)
	e := &env{t: t, site: s, rdb: s.RDB, store: s.Store}
	e.nats = testharness.StartNATS(t, func(o *server.Options) { o.JetStreamDomain = siteID })
	e.nc = e.nats.Conn(t)
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	return e
}

// running is a bridge run by a test.
type running struct {
	*Bridge
	done chan error
	stop context.CancelFunc
}

// start runs the bridge's uplink (and downlink) on nc until the test ends or Stop.
func (e *env) start(cfg Config, nc *nats.Conn, mod func(*Options)) *running {
	e.t.Helper()
	o := Options{Site: e.site.Config, Config: cfg, Redis: e.rdb, NATS: nc, Log: testLogger(),
		Block: 100 * time.Millisecond, AckTimeout: time.Second}
	if mod != nil {
		mod(&o)
	}
	b, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Bridge: b, done: make(chan error, 2), stop: cancel}
	go func() { r.done <- b.RunUplink(ctx) }()
	go func() { r.done <- b.RunDownlink(ctx) }()
	e.t.Cleanup(func() { r.Stop(e.t) })
	select {
	case <-b.DownlinkReady():
	case <-time.After(10 * time.Second):
		e.t.Fatal("downlink not listening after 10 s")
	}
	return r
}

// Stop stops the bridge and returns what RunUplink returned.
func (r *running) Stop(t *testing.T) error {
	if r.stop == nil {
		return nil
	}
	r.stop()
	r.stop = nil
	var errs []error
	for range 2 {
		select {
		case err := <-r.done:
			errs = append(errs, err)
		case <-time.After(10 * time.Second):
			t.Fatal("bridge did not stop within 10 s")
		}
	}
	return errors.Join(errs...)
}

func (e *env) writeChannel(ch uint32, t point.Type, ts int64, samples ...point.Sample) {
	e.t.Helper()
	if err := e.store.Write(context.Background(), statestore.ChannelBatch(ch, t, ts, samples)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) writeInstance(id uint32, ts int64, samples ...point.Sample) {
	e.t.Helper()
	b := statestore.Batch{Key: keyspace.InstanceMeasurements(id), TSKey: keyspace.InstanceMeasurementTimestamps(id), TS: ts, Samples: samples}
	if err := e.store.Write(context.Background(), b); err != nil {
		e.t.Fatal(err)
	}
}

func v(id uint32, value float64) point.Sample {
	return point.Sample{ID: point.ID(id), Value: value, Raw: value}
}

// changeIDs are the entry ids of voltage:changes, oldest first.
func (e *env) changeIDs() []string {
	e.t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// groupState is the bridge group's pending count and lag on stream.
func (e *env) groupState(stream string) (pending, lag int64, err error) {
	groups, err := e.rdb.XInfoGroups(context.Background(), stream).Result()
	if err != nil {
		return 0, 0, err
	}
	for _, g := range groups {
		if g.Name == Group {
			return g.Pending, g.Lag, nil
		}
	}
	return 0, 0, fmt.Errorf("no group %s on %s", Group, stream)
}

// waitAcked waits until the bridge acknowledged everything in stream.
func (e *env) waitAcked(stream string) {
	e.t.Helper()
	testharness.Eventually(e.t, 15*time.Second, func() error {
		p, l, err := e.groupState(stream)
		if err != nil {
			return err
		}
		if p != 0 || l != 0 {
			return fmt.Errorf("%s: %d pending, %d unread", stream, p, l)
		}
		return nil
	})
}

// uplinkMsg is one message of UPLINK.
type uplinkMsg struct {
	Subject string
	Header  nats.Header
	Data    []byte
}

// uplinkMsgs reads every message of the UPLINK stream through js.
func uplinkMsgs(t *testing.T, js jetstream.JetStream) []uplinkMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, subjects.UplinkStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // not made yet
	}
	if err != nil {
		t.Fatalf("stream %s: %v", subjects.UplinkStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []uplinkMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, uplinkMsg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

// entries are the Voltage-Entry headers of msgs.
func entries(msgs []uplinkMsg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Header.Get(uplink.HeaderEntry)
	}
	return out
}

// checkExactlyOnce checks that UPLINK holds one message per change entry, no more.
func checkExactlyOnce(t *testing.T, msgs []uplinkMsg, want []string) {
	t.Helper()
	got := entries(msgs)
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if d := slices.Compact(slices.Clone(sorted)); len(d) != len(sorted) {
		t.Errorf("UPLINK holds %d messages for %d distinct entries: duplicates stored", len(sorted), len(d))
	}
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(sorted, w) {
		t.Errorf("UPLINK entries (%d) differ from voltage:changes (%d):\n got %v\nwant %v", len(sorted), len(w), sorted, w)
	}
}
