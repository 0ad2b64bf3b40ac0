package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/shared/uplink"
	"github.com/voltageems/voltage/tools/sitetest"
)

// waitUplink waits until UPLINK holds n messages and returns them.
func waitUplink(t *testing.T, js jetstream.JetStream, n int) []uplinkMsg {
	t.Helper()
	var msgs []uplinkMsg
	testharness.Eventually(t, 15*time.Second, func() error {
		msgs = uplinkMsgs(t, js)
		if len(msgs) < n {
			return fmt.Errorf("UPLINK holds %d messages, want %d", len(msgs), n)
		}
		return nil
	})
	return msgs
}

// A change written through statestore arrives in UPLINK on its subject, with the
// de-duplication id, the entry and the key as headers and the pub/sub JSON as
// body; instance measurements and alarm events go up too; the entries are then
// acknowledged in Redis.
func TestChangesArriveInUplinkWithSubjectAndHeaders(t *testing.T) {
	e := newEnv(t)
	e.start(testConfig(), e.nc, nil)

	e.writeChannel(1, point.Telemetry, 1_700_000_000_000, v(1, 12.5), v(2, -3))
	e.writeChannel(1, point.Signal, 1_700_000_000_100, v(1, 1))
	e.writeInstance(5, 1_700_000_000_200, v(1, 99))
	e.writeChannel(1, point.Adjustment, 1_700_000_000_300, v(1, 50)) // not sent: A is a command
	alarmID, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keyspace.AlarmEvents,
		Values: map[string]any{"event": "raised", "alarm": "pcs_overtemp", "level": "major"}}).Result()
	if err != nil {
		t.Fatal(err)
	}

	msgs := waitUplink(t, e.js, 4)
	e.waitAcked(keyspace.Changes)
	e.waitAcked(keyspace.AlarmEvents)
	all := uplinkMsgs(t, e.js)
	if len(all) != 4 {
		t.Fatalf("UPLINK holds %d messages, want 4 (T, S, inst M, alarm)", len(all))
	}
	// The two feeds run side by side: their order in the stream is not defined.
	msgs = nil
	var alarms []uplinkMsg
	for _, m := range all {
		if m.Subject == subjects.AlarmUp(siteID) {
			alarms = append(alarms, m)
		} else {
			msgs = append(msgs, m)
		}
	}
	if len(alarms) != 1 {
		t.Fatalf("UPLINK holds %d alarm messages, want 1", len(alarms))
	}
	ids := e.changeIDs()
	raw, err := e.rdb.XRange(context.Background(), keyspace.Changes, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		subject, key string
	}{
		{subjects.ChannelUp(siteID, 1, point.Telemetry), keyspace.ChannelPoints(1, point.Telemetry)},
		{subjects.ChannelUp(siteID, 1, point.Signal), keyspace.ChannelPoints(1, point.Signal)},
		{subjects.InstanceUp(siteID, 5), keyspace.InstanceMeasurements(5)},
	}
	for i, w := range want {
		m := msgs[i]
		if m.Subject != w.subject {
			t.Errorf("message %d subject = %s, want %s", i, m.Subject, w.subject)
		}
		if got := m.Header.Get(uplink.HeaderMsgID); got != uplink.MsgID(siteID, uplink.SourceChanges, ids[i]) {
			t.Errorf("message %d %s = %q, want %q", i, uplink.HeaderMsgID, got, uplink.MsgID(siteID, uplink.SourceChanges, ids[i]))
		}
		if got := m.Header.Get(uplink.HeaderEntry); got != ids[i] {
			t.Errorf("message %d %s = %q, want %q", i, uplink.HeaderEntry, got, ids[i])
		}
		if got := m.Header.Get(uplink.HeaderKey); got != w.key {
			t.Errorf("message %d %s = %q, want %q", i, uplink.HeaderKey, got, w.key)
		}
		// The body is the Redis message, value for value.
		wantMsg, err := statestore.DecodeMessage([]byte(raw[i].Values["m"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		gotMsg, err := statestore.DecodeMessage(m.Data)
		if err != nil {
			t.Fatalf("message %d body %s: %v", i, m.Data, err)
		}
		if gotMsg.TS != wantMsg.TS || !maps.Equal(gotMsg.V, wantMsg.V) || !maps.Equal(gotMsg.T, wantMsg.T) || !maps.Equal(gotMsg.Q, wantMsg.Q) {
			t.Errorf("message %d body = %s, want %s", i, m.Data, raw[i].Values["m"])
		}
	}
	a := alarms[0]
	if a.Subject != subjects.AlarmUp(siteID) || a.Header.Get(uplink.HeaderMsgID) != uplink.MsgID(siteID, uplink.SourceAlarms, alarmID) {
		t.Errorf("alarm message = %s %v", a.Subject, a.Header)
	}
	var ev uplink.AlarmEvent
	if err := json.Unmarshal(a.Data, &ev); err != nil || ev.Site != siteID || ev.ID != alarmID || ev.Fields["alarm"] != "pcs_overtemp" || ev.Fields["event"] != "raised" {
		t.Errorf("alarm event = %s (%v)", a.Data, err)
	}
}

// The selection sends what it names and drops the rest — and a dropped change
// is still acknowledged; deadband, sampling and quality changes decide per point.
func TestSelectionDeadbandAndSampling(t *testing.T) {
	e := newEnv(t)
	cfg, errs := ParseConfig("uplink.yaml", []byte(`
uplink:
  channels:
    - {channels: [1], types: [T], points: [1, 2], deadband: 1.0}
    - {channels: [1], types: [S]}
    - {channels: [2], types: [T], sample_ms: 1000}
  instances: []
  alarms: false
stream: {max_mb: 64}
`), e.site.Config)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e.start(cfg, e.nc, nil)

	const t0 = 1_700_000_000_000
	bad := point.Sample{ID: 1, Value: 10.2, TS: t0 + 4000, Quality: point.Invalid}
	writes := []func(){
		func() { e.writeChannel(1, point.Telemetry, t0, v(1, 10), v(2, 5), v(3, 230)) }, // 1, 2 first values; 3 not selected
		func() { e.writeChannel(1, point.Telemetry, t0+1000, v(1, 10.5)) },              // inside the deadband: dropped
		func() { e.writeChannel(1, point.Telemetry, t0+2000, v(1, 11.2), v(2, 5.4)) },   // 1 moved 1.2: sent; 2 moved 0.4: not
		func() { e.writeChannel(1, point.Telemetry, t0+3000, v(3, 231)) },               // nothing selected: dropped
		func() { e.writeChannel(1, point.Telemetry, t0, bad) },                          // quality changed: sent
		func() { e.writeChannel(1, point.Signal, t0, v(1, 1)) },                         // every signal
		func() { e.writeChannel(1, point.Signal, t0+10, v(1, 1)) },                      // every signal, same value too
		func() { e.writeChannel(2, point.Telemetry, t0, v(1, 1)) },                      // first: sent
		func() { e.writeChannel(2, point.Telemetry, t0+500, v(1, 2)) },                  // 500 ms later: dropped
		func() { e.writeChannel(2, point.Telemetry, t0+1000, v(1, 3)) },                 // 1000 ms later: sent
		func() { e.writeInstance(5, t0, v(1, 1)) },                                      // no instances selected
		func() { e.writeChannel(1, point.Control, t0, v(1, 1)) },                        // never: C is a command
	}
	for _, w := range writes {
		w()
	}
	e.waitAcked(keyspace.Changes)
	msgs := uplinkMsgs(t, e.js)
	type sent struct {
		subject string
		v       map[string]float64
		q       map[string]string
	}
	want := []sent{
		{subjects.ChannelUp(siteID, 1, point.Telemetry), map[string]float64{"1": 10, "2": 5}, nil},
		{subjects.ChannelUp(siteID, 1, point.Telemetry), map[string]float64{"1": 11.2}, nil},
		{subjects.ChannelUp(siteID, 1, point.Telemetry), map[string]float64{"1": 10.2}, map[string]string{"1": "invalid"}},
		{subjects.ChannelUp(siteID, 1, point.Signal), map[string]float64{"1": 1}, nil},
		{subjects.ChannelUp(siteID, 1, point.Signal), map[string]float64{"1": 1}, nil},
		{subjects.ChannelUp(siteID, 2, point.Telemetry), map[string]float64{"1": 1}, nil},
		{subjects.ChannelUp(siteID, 2, point.Telemetry), map[string]float64{"1": 3}, nil},
	}
	if len(msgs) != len(want) {
		for _, m := range msgs {
			t.Logf("%s %s", m.Subject, m.Data)
		}
		t.Fatalf("UPLINK holds %d messages, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m, err := statestore.DecodeMessage(msgs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if msgs[i].Subject != w.subject || !maps.Equal(m.V, w.v) || !maps.Equal(m.Q, w.q) {
			t.Errorf("message %d = %s %s, want %s v=%v q=%v", i, msgs[i].Subject, msgs[i].Data, w.subject, w.v, w.q)
		}
	}
	if p, l, err := e.groupState(keyspace.Changes); err != nil || p != 0 || l != 0 {
		t.Errorf("dropped changes not acknowledged: %d pending, %d unread (%v)", p, l, err)
	}
	if _, err := e.rdb.XInfoGroups(context.Background(), keyspace.AlarmEvents).Result(); err == nil {
		t.Error("alarms: false, yet the bridge made a group on alarm:events")
	}
}

// An edge that crashes after JetStream stored the messages but before the Redis
// acknowledgement reads the entries again on restart and publishes them again:
// UPLINK still holds each exactly once.
func TestCrashBetweenStoreAndAckStoresOnce(t *testing.T) {
	e := newEnv(t)
	const n = 200
	for i := range n {
		e.writeChannel(1, point.Telemetry, int64(1_700_000_000_000+i), v(1, float64(i)))
	}
	var crashed atomic.Bool
	r := e.start(testConfig(), e.nc, func(o *Options) {
		o.beforeAck = func(feed string, ids []string) error {
			if feed == "changes" {
				crashed.Store(true)
				return errors.New("crash")
			}
			return nil
		}
	})
	testharness.WaitFor(t, 15*time.Second, "the bridge to reach its first acknowledgement", crashed.Load)
	if err := r.Stop(t); !errors.Is(err, errCrash) {
		t.Fatalf("bridge stopped with %v, want the simulated crash", err)
	}
	stored := uplinkMsgs(t, e.js)
	if len(stored) == 0 {
		t.Fatal("nothing stored before the crash: the test does not test the window it is about")
	}
	if p, _, err := e.groupState(keyspace.Changes); err != nil || p != n {
		t.Fatalf("after the crash %d entries pending (%v), want all %d", p, err, n)
	}

	e.start(testConfig(), e.nc, nil)
	e.waitAcked(keyspace.Changes)
	msgs := uplinkMsgs(t, e.js)
	if len(msgs) != n {
		t.Errorf("UPLINK holds %d messages after the restart, want %d", len(msgs), n)
	}
	checkExactlyOnce(t, msgs, e.changeIDs())
}

// While JetStream is unavailable nothing is acknowledged in Redis and the
// backlog stays in the stream; when it is back, the bridge catches up and every
// entry is stored exactly once.
func TestJetStreamUnavailableKeepsTheBacklog(t *testing.T) {
	e := newEnv(t)
	port := testharness.FreePort(t)
	store := t.TempDir()
	startServer := func() *server.Server {
		s, err := server.NewServer(&server.Options{ServerName: "edge", Host: "127.0.0.1", Port: port,
			JetStream: true, JetStreamDomain: siteID, StoreDir: store, NoLog: true, NoSigs: true,
			JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats server not ready")
		}
		return s
	}
	ns := startServer()
	t.Cleanup(func() { ns.Shutdown() })
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := e.start(testConfig(), nc, func(o *Options) { o.AckTimeout = 300 * time.Millisecond })

	write := func(from, to int) {
		for i := from; i < to; i++ {
			e.writeChannel(2, point.Telemetry, int64(1_700_000_000_000+i), v(1, float64(i)))
		}
	}
	write(0, 50)
	e.waitAcked(keyspace.Changes)

	ns.Shutdown()
	ns.WaitForShutdown()
	write(50, 150)
	testharness.WaitFor(t, 15*time.Second, "a failed publish", func() bool { return r.Changes.Failures.Load() > 0 })
	if got := r.Changes.Acked.Load(); got != 50 {
		t.Errorf("%d entries acknowledged while JetStream was away, want only the 50 from before", got)
	}
	p, l, err := e.groupState(keyspace.Changes)
	if err != nil || p+l != 100 {
		t.Errorf("backlog in Redis: %d pending + %d unread (%v), want 100", p, l, err)
	}

	ns = startServer()
	e.waitAcked(keyspace.Changes)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msgs := uplinkMsgs(t, js)
	if len(msgs) != 150 {
		t.Errorf("UPLINK holds %d messages, want 150", len(msgs))
	}
	checkExactlyOnce(t, msgs, e.changeIDs())
	if got := r.Changes.Acked.Load(); got != 150 {
		t.Errorf("%d entries acknowledged, want 150", got)
	}
}

// The stream is file-backed, limited as configured, and de-duplicates over the
// configured window.
func TestStreamConfig(t *testing.T) {
	e := newEnv(t)
	cfg, errs := ParseConfig("uplink.yaml", []byte("stream: {max_age_h: 2, max_mb: 10, duplicate_window_s: 120}\n"), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r := e.start(cfg, e.nc, nil)
	if err := r.EnsureStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := e.js.Stream(context.Background(), subjects.UplinkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Storage != jetstream.FileStorage || c.MaxAge != 2*time.Hour || c.MaxBytes != 10<<20 || c.Duplicates != 2*time.Minute {
		t.Errorf("stream config = storage %v, max_age %v, max_bytes %d, duplicates %v", c.Storage, c.MaxAge, c.MaxBytes, c.Duplicates)
	}
	if len(c.Subjects) != 3 || c.Subjects[2] != subjects.AlarmUp(siteID) {
		t.Errorf("stream subjects = %v", c.Subjects)
	}
}

// The heartbeat lists the expected services (ready from their svc:* heartbeats,
// with versions), services found only in Redis, and every channel with its name
// and state from comsrv:{ch}:status.
func TestStatusFromRedis(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	old := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
	for key, fields := range map[string][]any{
		keyspace.ServiceHeartbeat("comsrv", "box-1"):  {"heartbeat", now, "version", "1.2.3"},
		keyspace.ServiceHeartbeat("hissrv", "box-1"):  {"heartbeat", old, "version", "1.2.3"},
		keyspace.ServiceHeartbeat("voltsim", "box-2"): {"heartbeat", now, "version", "0.9"},
		keyspace.ChannelStatus(1):                     {"state", "up"},
		keyspace.ChannelStatus(2):                     {"state", "down", "last_error", "dial tcp: refused"},
	} {
		if err := e.rdb.HSet(ctx, key, fields...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := New(Options{Site: e.site.Config, Config: testConfig(), Redis: e.rdb, NATS: e.nc, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := e.nc.SubscribeSync(subjects.StatusUp(siteID))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.RunStatus(sctx, time.Hour, []string{"comsrv", "hissrv", "modsrv"}) }()
	m, err := sub.NextMsg(10 * time.Second)
	cancel()
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var st uplink.Status
	if err := json.Unmarshal(m.Data, &st); err != nil {
		t.Fatal(err)
	}
	wantSvc := []uplink.ServiceStatus{
		{Name: "comsrv", Version: "1.2.3", Ready: true},
		{Name: "hissrv", Version: "1.2.3", Ready: false}, // its heartbeat is a minute old
		{Name: "modsrv"}, // expected, no heartbeat
		{Name: "voltsim", Version: "0.9", Ready: true},
	}
	wantCh := []uplink.ChannelStatus{
		{ID: 1, Name: "pcs", State: "up"},
		{ID: 2, Name: "meter", State: "down", LastError: "dial tcp: refused"},
	}
	if st.Site != siteID || st.Name != "Site A" || st.TS == 0 || st.Version == "" ||
		fmt.Sprint(st.Services) != fmt.Sprint(wantSvc) || fmt.Sprint(st.Channels) != fmt.Sprint(wantCh) {
		t.Errorf("status = %+v\nwant services %+v channels %+v", st, wantSvc, wantCh)
	}
}

// Redis going away (killed, then back with its append-only file) stops nothing:
// the bridge retries, then resumes from its group's position; every change is in
// UPLINK exactly once.
func TestRedisOutageResumes(t *testing.T) {
	rd := testharness.StartRedisWith(t, testharness.RedisOptions{AppendOnly: true})
	dir, _ := sitetest.Write(t, virtualSite, rd.URL())
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &sitetest.Site{T: t, Dir: dir, Redis: rd, RDB: rd.Client(t), Config: cfg}
	s.Store = statestore.NewWriter(s.RDB, 0)
	e := &env{t: t, site: s, rdb: s.RDB, store: s.Store}
	e.nats = testharness.StartNATS(t, func(o *server.Options) { o.JetStreamDomain = siteID })
	e.nc = e.nats.Conn(t)
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	r := e.start(testConfig(), e.nc, nil)

	write := func(from, to int) {
		for i := from; i < to; i++ {
			e.writeChannel(1, point.Telemetry, int64(1_700_000_000_000+i), v(1, float64(i)))
		}
	}
	write(0, 30)
	e.waitAcked(keyspace.Changes)
	// Let the append-only file catch up with the acknowledgements (fsync every second).
	if err := e.rdb.Do(context.Background(), "BGREWRITEAOF").Err(); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		info, err := e.rdb.Info(context.Background(), "persistence").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "aof_rewrite_in_progress:0") || !strings.Contains(info, "aof_rewrite_scheduled:0") {
			return errors.New("AOF rewrite still running")
		}
		return nil
	})
	rd.Kill(t)
	testharness.WaitFor(t, 15*time.Second, "redis-server to exit", func() bool { return !rd.Running() })
	rd.Restart(t)
	write(30, 60)
	e.waitAcked(keyspace.Changes)
	msgs := uplinkMsgs(t, e.js)
	checkExactlyOnce(t, msgs, e.changeIDs())
	if got := r.Changes.Published.Load(); got != 60 {
		t.Errorf("published %d, want 60", got)
	}
}
