package voltsim_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

const mappingHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"

// deviceSite has two Modbus TCP channels plus two that must not be simulated.
// Channel 1 is a gateway (slaves 1 and 2) with every data type, several byte orders,
// coils, discrete inputs, bits inside registers and all four point types; its signal
// names match no profile heuristic, so every point holds what tests set. Channel 2
// uses 1-based register numbers.
var deviceSite = map[string]string{
	"site.yaml": "site: {id: sim-test, name: Simulator test}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
  - {id: 2, name: meter1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502, address_base: 1}}
  - {id: 3, name: spare, protocol: modbus_tcp, enabled: false, parameters: {host: 127.0.0.1, port: 502}}
  - {id: 4, name: calc, protocol: virtual}
`,
	"comsrv/1/telemetry.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type\n" +
		"1,t_u16,1,0,,0,float\n2,t_i16,1,0,,0,float\n3,t_u32,1,0,,0,float\n4,t_i32,1,0,,0,float\n" +
		"5,t_f32_dcba,1,0,,0,float\n6,t_f32_badc,1,0,,0,float\n7,t_u64,1,0,,0,float\n8,t_i64,1,0,,0,float\n" +
		"9,t_f64_le,1,0,,0,float\n10,t_f64_badc,1,0,,0,float\n11,t_scaled,0.1,-40,,0,float\n" +
		"12,t_slave2,1,0,,0,float\n13,t_input_f32,1,0,,0,float\n",
	"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader +
		"1,1,3,0,uint16,AB,\n" +
		"2,1,3,1,int16,BA,\n" +
		"3,1,3,2,uint32,ABCD,\n" +
		"4,1,3,4,int32,CDAB,\n" +
		"5,1,3,6,float32,DCBA,\n" +
		"6,1,3,8,float32,BADC,\n" +
		"7,1,3,10,uint64,ABCDEFGH,\n" +
		"8,1,3,14,int64,GHEFCDAB,\n" +
		"9,1,3,18,float64,HGFEDCBA,\n" +
		"10,1,3,22,float64,BADCFEHG,\n" +
		"11,1,4,26,int16,,\n" +
		"12,2,3,0,uint16,,\n" +
		"13,1,4,100,float32,CDAB,\n",
	"comsrv/1/signal.csv": "point_id,signal_name,reverse\n1,s_di0,0\n2,s_di5,0\n3,s_bit3,0\n4,s_bit15,0\n5,s_di6_rev,1\n",
	"comsrv/1/mapping/signal_mapping.csv": mappingHeader +
		"1,1,2,0,bool,,\n2,1,2,5,bool,,\n3,1,3,30,bool,,3\n4,1,3,30,bool,,15\n5,1,2,6,bool,,\n",
	"comsrv/1/control.csv": "point_id,signal_name\n1,c_start\n2,c_enable\n3,c_bit2\n",
	"comsrv/1/mapping/control_mapping.csv": mappingHeader +
		"1,1,5,0,bool,,\n2,1,15,1,bool,,\n3,1,6,40,bool,,2\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,data_type\n1,a_setpoint,0.1,float\n2,a_mode,1,int\n3,a_i32,1,int\n",
	"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader +
		"1,1,16,50,float32,ABCD,\n2,1,6,52,uint16,,\n3,1,16,53,int32,CDAB,\n",

	"comsrv/2/telemetry.csv":                 "point_id,signal_name\n1,m_first\n2,m_second\n",
	"comsrv/2/mapping/telemetry_mapping.csv": mappingHeader + "1,1,3,1,uint16,,\n2,1,4,10,int32,,\n",
}

// writeSite writes files into a fresh site folder and loads it.
func writeSite(t *testing.T, files map[string]string) *config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("load test site: %v", err)
	}
	return cfg
}

// testLogger writes the simulator's log into the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// startSim runs a simulator on random loopback ports with a manual clock until the
// test ends, and checks that Run then returns promptly and cleanly.
func startSim(t *testing.T, cfg *config.Config, opts voltsim.Options) *voltsim.Sim {
	t.Helper()
	opts.ListenOverride = "127.0.0.1"
	opts.ManualClock = true
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	sim, err := voltsim.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Run did not return within 2 s of cancel")
		}
	})
	return sim
}

// client connects an independent Modbus TCP client to addr as unit.
func client(t *testing.T, addr string, unit uint8, timeout time.Duration) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + addr, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	if err := c.SetUnitId(unit); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

func fmtRegs(r []uint16) string { return fmt.Sprintf("%04X", r) }

// waitRequests waits until channel ch has seen at least n requests.
func waitRequests(t *testing.T, sim *voltsim.Sim, ch uint32, n int) {
	t.Helper()
	testharness.WaitFor(t, 2*time.Second, fmt.Sprintf("%d requests on channel %d", n, ch), func() bool {
		return len(sim.Requests(ch)) >= n
	})
}
