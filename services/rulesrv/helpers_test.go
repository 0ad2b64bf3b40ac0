package rulesrv_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// files is a site folder; see sitetest.Files for its placeholders.
type files = sitetest.Files

var merge = sitetest.Merge

func writeSite(t testing.TB, fs files, redisURL string) string {
	dir, _ := sitetest.Write(t, fs, redisURL)
	return dir
}

// stack is a test's running system: the site of sitetest (redis-server,
// optionally the plant) and rulesrv.
type stack struct {
	*sitetest.Site
	now     func() time.Time
	rulesrv *sitetest.Service
	probe   atomic.Int64
}

func newStack(t *testing.T, fs files) *stack {
	t.Helper()
	return &stack{Site: sitetest.New(t, fs)}
}

// startRulesrv runs rulesrv in this process and waits until it is ready.
func (s *stack) startRulesrv() {
	s.T.Helper()
	s.rulesrv = sitetest.Run(s.T, "rulesrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return rulesrv.Run(ctx, rulesrv.Config{Site: s.Config, ConfigDir: s.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(s.T), Now: s.now, Bound: bound})
	})
}

func (s *stack) stop() {
	if s.rulesrv != nil {
		s.rulesrv.Stop()
	}
}

// setInst writes instance measurements as modsrv would (hashes, pub/sub, stream).
func (s *stack) setInst(inst uint32, q point.Quality, kv ...float64) {
	s.T.Helper()
	b := statestore.Batch{Key: keyspace.InstanceMeasurements(inst), TSKey: keyspace.InstanceMeasurementTimestamps(inst),
		QualityKey: keyspace.InstanceMeasurementQuality(inst), TS: time.Now().UnixMilli()}
	for i := 0; i+1 < len(kv); i += 2 {
		b.Samples = append(b.Samples, point.Sample{ID: point.ID(kv[i]), Value: kv[i+1], Quality: q})
	}
	if err := s.Store.Write(context.Background(), b); err != nil {
		s.T.Fatal(err)
	}
}

// setChannel writes channel samples as comsrv would.
func (s *stack) setChannel(ch uint32, typ point.Type, id point.ID, v float64) {
	s.T.Helper()
	if err := s.Store.Write(context.Background(), statestore.ChannelBatch(ch, typ, time.Now().UnixMilli(),
		[]point.Sample{{ID: id, Value: v}})); err != nil {
		s.T.Fatal(err)
	}
}

// sync waits until rulesrv has evaluated every change written before it: the
// probe rule (level, on ch9.T1) records each value it sees, and changes are
// evaluated in order.
func (s *stack) sync() {
	s.T.Helper()
	n := float64(s.probe.Add(1))
	s.setChannel(9, point.Telemetry, 1, n)
	want := strconv.FormatFloat(n, 'g', -1, 64)
	testharness.Eventually(s.T, 20*time.Second, func() error {
		vars := s.HGet(keyspace.RuleExecution("probe"), "variables")
		if !strings.Contains(vars, `"value":`+want+`,`) {
			return fmt.Errorf("probe saw %s, want %s", vars, want)
		}
		return nil
	})
}

func (s *stack) exec(id string) map[string]string {
	h, _ := s.RDB.HGetAll(context.Background(), keyspace.RuleExecution(id)).Result()
	return h
}

// commands lists the values of the commands in a channel's stream, oldest first.
func (s *stack) commands(ch uint32) []string {
	msgs, err := s.RDB.XRange(context.Background(), keyspace.ChannelCommands(ch), "-", "+").Result()
	if err != nil && err != redis.Nil {
		s.T.Fatal(err)
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, fmt.Sprint(m.Values["point"], "=", m.Values["value"]))
	}
	return out
}

func (s *stack) waitCommands(ch uint32, n int) []string {
	s.T.Helper()
	var got []string
	testharness.Eventually(s.T, 20*time.Second, func() error {
		got = s.commands(ch)
		if len(got) < n {
			return fmt.Errorf("channel %d has %d commands %v, want %d", ch, len(got), got, n)
		}
		return nil
	})
	return got
}

// events lists rule:events entries of one rule with the kind.
func (s *stack) events(rule, kind string) []map[string]any {
	msgs, _ := s.RDB.XRange(context.Background(), keyspace.RuleEvents, "-", "+").Result()
	var out []map[string]any
	for _, m := range msgs {
		if m.Values["rule"] == rule && (kind == "" || m.Values["kind"] == kind) {
			out = append(out, m.Values)
		}
	}
	return out
}

func (s *stack) call(method, path, body string, out any) (int, string) {
	s.T.Helper()
	return s.rulesrv.Call(method, path, body, out)
}
