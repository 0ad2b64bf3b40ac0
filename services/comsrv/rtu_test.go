package comsrv_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/voltsim"
)

// rtuSite has two RTU buses: channel 1 behind a serial server (RTU over TCP) with
// three slaves, channel 2 on a serial port (a pseudo-terminal voltsim links at
// device) with two. Each slave has a telemetry point; slave 1 of each bus also an
// adjustment.
func rtuSite(device string) files {
	tel := pointHeader + "1,s1_value,1,0,,0,float,\n2,s2_value,0.1,0,,0,float,\n3,s3_value,1,0,,0,float,\n"
	return files{
		"comsrv/channels.yaml": `channels:
  - {id: 1, name: rs485_gateway, protocol: modbus_rtu_over_tcp, enabled: true,
     parameters: {host: 127.0.0.1, port: {{PORT1}}, poll_interval_ms: 100, timeout_ms: 300, slave_backoff_ms: 100}}
  - {id: 2, name: rs485_local, protocol: modbus_rtu, enabled: true,
     parameters: {device: "` + device + `", baud_rate: 115200, parity: none, poll_interval_ms: 100, timeout_ms: 300, frame_delay_ms: 1}}
`,
		"comsrv/1/telemetry.csv":                  tel,
		"comsrv/1/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,uint16,,\n2,2,4,10,int32,CDAB,\n3,3,3,5,float32,ABCD,\n",
		"comsrv/1/adjustment.csv":                 pointHeader + "1,s1_setpoint,1,0,,0,float,\n",
		"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,1,6,20,uint16,,\n",
		"comsrv/2/telemetry.csv":                  pointHeader + "1,a_value,1,0,,0,float,\n2,b_value,1,0,,0,float,\n",
		"comsrv/2/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,int16,,\n2,2,3,0,uint16,,\n",
		"comsrv/2/adjustment.csv":                 pointHeader + "1,a_setpoint,1,0,,0,float,\n",
		"comsrv/2/mapping/adjustment_mapping.csv": mappingHeader + "1,1,16,30,float32,ABCD,\n",
	}
}

// TestRTUSeveralSlavesOneBusNeverOverlap polls three slaves behind a serial server
// and two on a serial port, writes to one slave of each bus, and checks with the
// simulator that no request ever reached a bus while another was unanswered.
func TestRTUSeveralSlavesOneBusNeverOverlap(t *testing.T) {
	device := filepath.Join(t.TempDir(), "ttyRTU0")
	s := startStack(t, rtuSite(device))
	want := map[uint32]map[point.ID]float64{1: {1: 1234, 2: -5.5, 3: 2.25}, 2: {1: -77, 2: 65000}}
	for ch, pts := range want {
		for id, v := range pts {
			if err := s.sim.SetValue(ch, point.Telemetry, id, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for ch, pts := range want {
		for id, v := range pts {
			s.waitField(keyspace.ChannelPoints(ch, point.Telemetry), itoa(id), point.FormatValue(v))
		}
	}
	for _, c := range []command.Command{
		{Channel: 1, Type: point.Adjustment, Point: 1, Value: 321},
		{Channel: 2, Type: point.Adjustment, Point: 1, Value: -1.5},
	} {
		if r := submit(t, s, c); r.Status != command.OK {
			t.Fatalf("command to channel %d: %s (%s)", c.Channel, r.Status, r.Error)
		}
		if v, err := s.sim.Value(c.Channel, point.Adjustment, c.Point); err != nil || v != c.Value {
			t.Fatalf("channel %d device holds %v (%v), want %v", c.Channel, v, err, c.Value)
		}
	}
	// Let a few more polls run, with writes in between, then check the buses.
	for ch := uint32(1); ch <= 2; ch++ {
		testharness.Eventually(t, 10*time.Second, func() error {
			st, err := s.sim.ModbusBus(ch)
			if err != nil {
				return err
			}
			if st.Requests < 30 {
				return fmt.Errorf("channel %d: %d requests so far", ch, st.Requests)
			}
			return nil
		})
		st, _ := s.sim.ModbusBus(ch)
		if st.Violations != 0 || st.BadFrames != 0 {
			t.Errorf("channel %d bus: %+v, want no violations and no bad frames", ch, st)
		}
		slaves := map[uint8]bool{}
		for _, r := range s.sim.Requests(ch) {
			slaves[r.Slave] = true
		}
		if len(slaves) != len(want[ch]) {
			t.Errorf("channel %d: requests went to slaves %v, want %d slaves", ch, slaves, len(want[ch]))
		}
	}
}

// TestRTUCRCErrorsAndTimeoutsCountedAndSurvived injects CRC errors into one slave's
// answers and silences another: their points turn comm_lost, the link stays up,
// the other slaves keep updating, the errors are counted in the channel status and
// the metrics, and every point recovers when the faults clear.
func TestRTUCRCErrorsAndTimeoutsCountedAndSurvived(t *testing.T) {
	device := filepath.Join(t.TempDir(), "ttyRTU0")
	s := startStack(t, rtuSite(device))
	for ch, n := range map[uint32]int{1: 3, 2: 2} {
		for id := point.ID(1); id <= point.ID(n); id++ {
			_ = s.sim.SetValue(ch, point.Telemetry, id, float64(id))
			s.waitField(keyspace.ChannelPoints(ch, point.Telemetry), itoa(id), point.FormatValue(float64(id)))
		}
	}
	quality := func(ch uint32, id point.ID) string {
		return s.hget(keyspace.ChannelQuality(ch, point.Telemetry), itoa(id))
	}
	statusInt := func(ch uint32, field string) int64 {
		n, _ := strconv.ParseInt(s.hget(keyspace.ChannelStatus(ch), field), 10, 64)
		return n
	}

	for _, tc := range []struct {
		ch    uint32
		slave uint8
		mode  voltsim.FaultMode
	}{
		{1, 1, voltsim.FaultCRC},     // serial server: CRC errors from slave 1
		{1, 3, voltsim.FaultTimeout}, // serial server: slave 3 silent
		{2, 2, voltsim.FaultCRC},     // serial port: CRC errors from slave 2
		{2, 1, voltsim.FaultTimeout}, // serial port: slave 1 silent
	} {
		t.Run(fmt.Sprintf("channel%d_slave%d_%s", tc.ch, tc.slave, tc.mode), func(t *testing.T) {
			faulty := point.ID(tc.slave) // point id = slave id in rtuSite
			before := statusInt(tc.ch, "request_errors")
			slave := tc.slave
			if err := s.sim.SetFault(tc.ch, voltsim.Fault{Mode: tc.mode, Slave: &slave}); err != nil {
				t.Fatal(err)
			}
			waitFieldT(t, s, keyspace.ChannelQuality(tc.ch, point.Telemetry), itoa(faulty), point.CommLost.String())
			testharness.Eventually(t, 10*time.Second, func() error {
				if n := statusInt(tc.ch, "request_errors"); n < before+2 {
					return fmt.Errorf("request_errors %d, want at least %d", n, before+2)
				}
				return nil
			})
			if st := s.hget(keyspace.ChannelStatus(tc.ch), "state"); st != "up" {
				t.Fatalf("link state %q during a per-slave fault, want up", st)
			}
			// Another slave on the same bus keeps being read.
			other := point.ID(1)
			if other == faulty {
				other = 2
			}
			next := float64(100 + other)
			_ = s.sim.SetValue(tc.ch, point.Telemetry, other, next)
			waitFieldT(t, s, keyspace.ChannelPoints(tc.ch, point.Telemetry), itoa(other), point.FormatValue(next))
			if q := quality(tc.ch, other); q != "" {
				t.Fatalf("healthy slave's point has quality %q", q)
			}

			if err := s.sim.SetFault(tc.ch, voltsim.Fault{Mode: voltsim.FaultNone}); err != nil {
				t.Fatal(err)
			}
			_ = s.sim.SetValue(tc.ch, point.Telemetry, faulty, 55)
			waitFieldT(t, s, keyspace.ChannelPoints(tc.ch, point.Telemetry), itoa(faulty), "55")
			testharness.Eventually(t, 10*time.Second, func() error {
				if q := quality(tc.ch, faulty); q != "" {
					return fmt.Errorf("quality %q after the fault cleared, want good", q)
				}
				return nil
			})
			if st, err := s.sim.ModbusBus(tc.ch); err != nil || st.Violations != 0 {
				t.Fatalf("bus %+v (%v): a timeout must not make the master talk over a slave", st, err)
			}
		})
	}
	if n := statusInt(1, "errors"); n < statusInt(1, "request_errors") {
		t.Errorf("status errors %d does not include request_errors", n)
	}
	metrics := httpGet(t, s.httpURL+"/metrics")
	re := regexp.MustCompile(`comsrv_request_errors_total\{channel="2"\} (\d+)`)
	if m := re.FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("metrics lack a non-zero comsrv_request_errors_total for channel 2:\n%s", m)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFieldT is stack.waitField for a subtest.
func waitFieldT(t *testing.T, s *stack, key, field, want string) {
	t.Helper()
	testharness.Eventually(t, 10*time.Second, func() error {
		if got := s.hget(key, field); got != want {
			return fmt.Errorf("%s %s = %q, want %q", key, field, got, want)
		}
		return nil
	})
}
