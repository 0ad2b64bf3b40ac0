package iec104_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tasdu "github.com/thinkgos/go-iecp5/asdu"
	tcs104 "github.com/thinkgos/go-iecp5/cs104"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/services/comsrv/protocol/iec104"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
)

// The driver against a controlled station built on another implementation:
// github.com/thinkgos/go-iecp5 (the project the driver's library was forked
// from, at its last release, with its own APCI state machine and timers).

// sink collects what the driver delivers.
type sink struct {
	mu      sync.Mutex
	samples map[string]point.Sample
}

func (s *sink) Sample(t point.Type, smp point.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples[fmt.Sprintf("%s%d", t, smp.ID)] = smp
}

func (s *sink) Fail(point.Type, point.ID, point.Quality, error) {}

func (s *sink) get(k string) (point.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.samples[k]
	return v, ok
}

// otherStation is a thinkgos go-iecp5 server answering interrogations and
// set-point commands the way a real RTU does.
type otherStation struct {
	mu       sync.Mutex
	setpoint float32
	clock    time.Time
	refuse   bool
	silent   bool
	gis      int
}

func (o *otherStation) reply(c tasdu.Connect, req *tasdu.ASDU, cause tasdu.Cause, neg bool, obj func(a *tasdu.ASDU)) error {
	a := tasdu.NewASDU(c.Params(), tasdu.Identifier{
		Type: req.Type, Variable: tasdu.VariableStruct{Number: 1},
		Coa: tasdu.CauseOfTransmission{Cause: cause, IsNegative: neg}, CommonAddr: req.CommonAddr,
	})
	obj(a)
	return c.Send(a)
}

func (o *otherStation) InterrogationHandler(c tasdu.Connect, a *tasdu.ASDU, qoi tasdu.QualifierOfInterrogation) error {
	o.mu.Lock()
	o.gis++
	o.mu.Unlock()
	obj := func(r *tasdu.ASDU) { _ = r.AppendInfoObjAddr(0); r.AppendBytes(byte(qoi)) }
	if err := o.reply(c, a, tasdu.ActivationCon, false, obj); err != nil {
		return err
	}
	gi := tasdu.CauseOfTransmission{Cause: tasdu.InterrogatedByStation}
	if err := tasdu.MeasuredValueFloat(c, false, gi, a.CommonAddr,
		tasdu.MeasuredValueFloatInfo{Ioa: 100, Value: 49.95},
		tasdu.MeasuredValueFloatInfo{Ioa: 101, Value: -3.5, Qds: tasdu.QDSInvalid}); err != nil {
		return err
	}
	if err := tasdu.Double(c, false, gi, a.CommonAddr, tasdu.DoublePointInfo{Ioa: 200, Value: tasdu.DPIDeterminedOn}); err != nil {
		return err
	}
	if err := tasdu.MeasuredValueScaled(c, false, gi, a.CommonAddr, tasdu.MeasuredValueScaledInfo{Ioa: 102, Value: -1234}); err != nil {
		return err
	}
	return o.reply(c, a, tasdu.ActivationTerm, false, obj)
}

func (o *otherStation) CounterInterrogationHandler(c tasdu.Connect, a *tasdu.ASDU, q tasdu.QualifierCountCall) error {
	obj := func(r *tasdu.ASDU) { _ = r.AppendInfoObjAddr(0); r.AppendBytes(q.Value()) }
	if err := o.reply(c, a, tasdu.ActivationCon, false, obj); err != nil {
		return err
	}
	if err := tasdu.IntegratedTotals(c, false, tasdu.CauseOfTransmission{Cause: tasdu.RequestByGeneralCounter}, a.CommonAddr,
		tasdu.BinaryCounterReadingInfo{Ioa: 103, Value: tasdu.BinaryCounterReading{CounterReading: 987654}}); err != nil {
		return err
	}
	return o.reply(c, a, tasdu.ActivationTerm, false, obj)
}

func (o *otherStation) ReadHandler(tasdu.Connect, *tasdu.ASDU, tasdu.InfoObjAddr) error { return nil }

func (o *otherStation) ClockSyncHandler(c tasdu.Connect, a *tasdu.ASDU, t time.Time) error {
	o.mu.Lock()
	o.clock = t
	o.mu.Unlock()
	return o.reply(c, a, tasdu.ActivationCon, false, func(r *tasdu.ASDU) {
		_ = r.AppendInfoObjAddr(0)
		r.AppendCP56Time2a(t, r.InfoObjTimeZone)
	})
}

func (o *otherStation) ResetProcessHandler(tasdu.Connect, *tasdu.ASDU, tasdu.QualifierOfResetProcessCmd) error {
	return nil
}

func (o *otherStation) DelayAcquisitionHandler(tasdu.Connect, *tasdu.ASDU, uint16) error { return nil }

func (o *otherStation) ASDUHandler(c tasdu.Connect, a *tasdu.ASDU) error {
	if a.Type != tasdu.C_SE_NC_1 {
		return errors.New("unsupported")
	}
	cmd := a.GetSetpointFloatCmd()
	obj := func(r *tasdu.ASDU) {
		_ = r.AppendInfoObjAddr(cmd.Ioa)
		r.AppendFloat32(cmd.Value).AppendBytes(cmd.Qos.Value())
	}
	o.mu.Lock()
	refuse, silent := o.refuse, o.silent
	if !refuse && !cmd.Qos.InSelect {
		o.setpoint = cmd.Value
	}
	o.mu.Unlock()
	if silent {
		return nil
	}
	if refuse {
		return o.reply(c, a, tasdu.ActivationCon, true, obj)
	}
	if err := o.reply(c, a, tasdu.ActivationCon, false, obj); err != nil {
		return err
	}
	if cmd.Qos.InSelect {
		return nil
	}
	return o.reply(c, a, tasdu.ActivationTerm, false, obj)
}

// loadChannel writes a one-channel site and loads it.
func loadChannel(t *testing.T, port int, params string, tables map[string]string) *config.Channel {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"site.yaml": "site: {id: t}\n",
		"comsrv/channels.yaml": fmt.Sprintf("channels:\n  - {id: 1, name: rtu, protocol: iec104, parameters: {host: 127.0.0.1, port: %d%s}}\n",
			port, params),
	}
	for k, v := range tables {
		files["comsrv/1/"+k] = v
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Channel(1)
}

const (
	pointHdr = "point_id,signal_name,scale,offset,unit,reverse,data_type,description\n"
	mapHdr   = "point_id,common_address,ioa,type_id\n"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestInteropWithThinkgosServer(t *testing.T) {
	port := testharness.FreePort(t)
	station := &otherStation{}
	srv := tcs104.NewServer(station)
	srv.LogMode(false)
	go srv.ListenAndServer(fmt.Sprintf("127.0.0.1:%d", port))
	t.Cleanup(func() { _ = srv.Close() })

	ch := loadChannel(t, port, ", t1_ms: 3000, t2_ms: 1000, t3_ms: 1000, command_timeout_ms: 1000", map[string]string{
		"telemetry.csv":                  pointHdr + "1,f,1,0,,0,float,\n2,bad,1,0,,0,float,\n3,scaled,0.1,0,,0,float,\n4,energy,1,0,kWh,0,float,\n",
		"mapping/telemetry_mapping.csv":  mapHdr + "1,1,100,M_ME_NC_1\n2,1,101,M_ME_NC_1\n3,1,102,M_ME_NB_1\n4,1,103,M_IT_NA_1\n",
		"signal.csv":                     pointHdr + "1,breaker,1,0,,0,bool,\n",
		"mapping/signal_mapping.csv":     mapHdr + "1,1,200,M_DP_NA_1\n",
		"adjustment.csv":                 pointHdr + "1,sp,1,0,,0,float,\n",
		"mapping/adjustment_mapping.csv": "point_id,common_address,ioa,type_id,sbo\n1,1,300,C_SE_NC_1,1\n",
	})
	drv, err := protocol.New(ch, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{samples: map[string]point.Sample{}}
	ctx := context.Background()
	// The server binds in its own goroutine: connect once it is there.
	testharness.Eventually(t, 10*time.Second, func() error {
		if err := drv.Connect(ctx, s); err != nil {
			_ = drv.Close()
			return err
		}
		return nil
	})
	defer drv.Close()

	want := map[string]point.Sample{
		"T1": {Value: 49.95, Quality: point.Good},
		"T2": {Value: -3.5, Quality: point.Invalid},
		"T3": {Value: -123.4, Quality: point.Good},
		"T4": {Value: 987654, Quality: point.Good},
		"S1": {Value: 1, Quality: point.Good},
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		for k, w := range want {
			got, ok := s.get(k)
			if !ok || got.Value != w.Value || got.Quality != w.Quality {
				return fmt.Errorf("%s = %+v (present %v), want value %v quality %s", k, got, ok, w.Value, w.Quality)
			}
		}
		return nil
	})
	station.mu.Lock()
	clock := station.clock
	station.mu.Unlock()
	if clock.IsZero() || time.Since(clock).Abs() > time.Minute {
		t.Errorf("station clock set to %v, want about now", clock)
	}

	// A set-point with select-before-operate, confirmed and terminated.
	if err := drv.Write(ctx, ch.Point(point.Adjustment, 1), 17.25); err != nil {
		t.Fatalf("set-point: %v", err)
	}
	station.mu.Lock()
	got := station.setpoint
	station.refuse = true
	station.mu.Unlock()
	if got != 17.25 {
		t.Errorf("station set-point %v, want 17.25", got)
	}
	// Refused: the error names the cause.
	err = drv.Write(ctx, ch.Point(point.Adjustment, 1), 1)
	if err == nil || !strings.Contains(err.Error(), "negative confirmation") {
		t.Fatalf("refused set-point: %v, want a negative confirmation", err)
	}

	// No answer at all: the command times out.
	station.mu.Lock()
	station.refuse, station.silent = false, true
	station.mu.Unlock()
	err = drv.Write(ctx, ch.Point(point.Adjustment, 1), 2)
	if !errors.Is(err, iec104.ErrTimeout) {
		t.Fatalf("unanswered set-point: %v, want ErrTimeout", err)
	}

	// Spontaneous data from the other stack.
	if err := tasdu.MeasuredValueFloat(srv, false, tasdu.CauseOfTransmission{Cause: tasdu.Spontaneous}, 1,
		tasdu.MeasuredValueFloatInfo{Ioa: 100, Value: 50.05}); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		if got, _ := s.get("T1"); got.Value != 50.05 {
			return fmt.Errorf("T1 = %v, want 50.05", got.Value)
		}
		return nil
	})
	// End of initialisation: the station restarted, the next poll interrogates again.
	station.mu.Lock()
	gis := station.gis
	station.mu.Unlock()
	if err := tasdu.EndOfInitialization(srv, tasdu.CauseOfTransmission{Cause: tasdu.Initialized}, 1, 0,
		tasdu.CauseOfInitial{Cause: tasdu.COILocalPowerOn}); err != nil {
		t.Fatal(err)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		if err := drv.Poll(ctx, s); err != nil {
			return err
		}
		station.mu.Lock()
		defer station.mu.Unlock()
		if station.gis == gis {
			return errors.New("no interrogation after the end of initialisation")
		}
		return nil
	})

	// Poll keeps the link: TESTFR (t3 = 1 s) is answered, nothing is lost.
	if err := drv.Poll(ctx, s); err != nil {
		t.Fatalf("poll: %v", err)
	}

	// The station goes away: Poll reports the lost link.
	_ = srv.Close()
	testharness.Eventually(t, 10*time.Second, func() error {
		if err := drv.Poll(ctx, s); err == nil {
			return errors.New("poll still succeeds after the station closed")
		}
		return nil
	})
}

// A station that is not there: Connect fails quickly, not after t0.
func TestConnectRefusedFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	ch := loadChannel(t, port, "", map[string]string{
		"telemetry.csv": pointHdr + "1,f,1,0,,0,float,\n", "mapping/telemetry_mapping.csv": mapHdr + "1,1,100,13\n",
	})
	drv, err := protocol.New(ch, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- drv.Connect(context.Background(), &sink{samples: map[string]point.Sample{}}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("connect: %v, want connection refused", err)
		}
	case <-time.After(20 * time.Second): // t0 is 30 s: returning at all before it is the point
		t.Fatal("Connect waited for t0 instead of reporting the refused connection")
	}
	_ = drv.Close()
}
