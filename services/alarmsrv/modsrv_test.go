package alarmsrv_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// Instance measurements come from modsrv (routing channel 1 T 2 to
// pv1.active_power): a limit and an expression on them raise and clear from
// the inst:{id}:M change messages modsrv publishes.
func TestInstanceAlarmsThroughModsrv(t *testing.T) {
	s := newStack(t, `alarms:
  - {id: pv1_power, kind: limit, instance: pv1, measurement: active_power, limits: {h: {value: 80, severity: minor}}, deadband: 2, message: "{instance} {value}{unit}"}
  - {id: pv1_over, kind: expression, expression: "pv1.active_power > pv1.rated_power * 0.85", severity: warning}
`)
	cfg, err := config.Load(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	bound := make(chan net.Addr, 1)
	go func() {
		done <- modsrv.Run(ctx, modsrv.Config{Site: cfg, ConfigDir: s.dir, HTTPAddr: "127.0.0.1:0", Log: testLogger(t), Bound: func(a net.Addr) { bound <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("modsrv did not stop")
		}
	})
	select {
	case <-bound:
	case err := <-done:
		t.Fatalf("modsrv: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("modsrv did not start")
	}
	s.start()
	s.write(point.Telemetry, point.Sample{ID: 2, Value: 70})
	s.write(point.Telemetry, point.Sample{ID: 2, Value: 90})
	ev := s.waitEvents(alarmsrv.EventRaised, "pv1_power:h", 1)
	if ev.Alarm.Instance != "pv1" || ev.Alarm.Message != "pv1 90kW" {
		t.Fatalf("instance alarm: %+v", ev.Alarm)
	}
	s.waitEvents(alarmsrv.EventRaised, "pv1_over", 1)
	s.write(point.Telemetry, point.Sample{ID: 2, Value: 79}) // inside the deadband
	s.write(point.Telemetry, point.Sample{ID: 2, Value: 50})
	s.waitEvents(alarmsrv.EventCleared, "pv1_power:h", 1)
	s.waitEvents(alarmsrv.EventCleared, "pv1_over", 1)
	if n := s.countEvents(alarmsrv.EventCleared, "pv1_power:h"); n != 1 {
		t.Fatalf("%d clears", n)
	}
}
