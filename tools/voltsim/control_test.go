package voltsim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/tools/voltsim"
)

// call sends a request to the control API and decodes the JSON answer into out
// (when not nil), returning the status code.
func call(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	must(t, err)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	must(t, err)
	if out != nil && resp.StatusCode < 300 && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

func TestControlAPI(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{ControlAddr: "127.0.0.1:0"})
	base := "http://" + sim.ControlAddr()
	cl := client(t, sim.Addr(1), 1, 500*time.Millisecond)

	var chans []struct {
		ID       uint32 `json:"id"`
		Address  string `json:"address"`
		Points   int    `json:"points"`
		Requests int    `json:"requests"`
	}
	if code := call(t, "GET", base+"/channels", "", &chans); code != 200 || len(chans) != 2 ||
		chans[0].Address != sim.Addr(1) || chans[0].Points != 24 || chans[1].Points != 2 {
		t.Fatalf("GET /channels: %d %+v", code, chans)
	}

	var ps voltsim.PointState
	if code := call(t, "PUT", base+"/channels/1/points/YC/1", `{"value": 4321}`, &ps); code != 200 || ps.Value != 4321 || ps.Profile != voltsim.ProfileFixed {
		t.Errorf("PUT point: %d %+v", code, ps)
	}
	if v, err := cl.ReadRegister(0, modbus.HOLDING_REGISTER); err != nil || v != 4321 {
		t.Errorf("value set over HTTP reads %d, %v", v, err)
	}
	if code := call(t, "GET", base+"/channels/1/points/telemetry/1", "", &ps); code != 200 || ps.Value != 4321 || ps.Name != "t_u16" {
		t.Errorf("GET point: %d %+v", code, ps)
	}

	// Faults, through JSON as an operator's script would send them.
	var faults []map[string]any
	if code := call(t, "POST", base+"/channels/1/faults", `{"mode": "exception", "exception_code": 6}`, &faults); code != 200 || len(faults) != 1 {
		t.Errorf("POST fault: %d %+v", code, faults)
	}
	if _, err := cl.ReadRegister(0, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrServerDeviceBusy) {
		t.Errorf("under exception 06: %v", err)
	}
	call(t, "POST", base+"/channels/1/faults", `{"mode": "timeout", "slave": 1}`, nil)
	if _, err := cl.ReadRegister(0, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrRequestTimedOut) {
		t.Errorf("under a slave 1 timeout: %v", err)
	}
	call(t, "POST", base+"/channels/1/faults", `{"mode": "none"}`, nil)
	call(t, "POST", base+"/channels/1/faults", `{"mode": "delay", "delay_ms": 50}`, nil)
	if fs := sim.Faults(1); len(fs) != 1 || fs[0].Delay != 50*time.Millisecond {
		t.Errorf("delay fault over HTTP: %+v", fs)
	}
	call(t, "POST", base+"/channels/1/faults", `{"mode": "none"}`, nil)
	if _, err := cl.ReadRegister(0, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("after clearing: %v", err)
	}

	must(t, cl.WriteRegister(52, 5))
	var writes []voltsim.Write
	if code := call(t, "GET", base+"/channels/1/writes", "", &writes); code != 200 || len(writes) != 1 || writes[0].Value != 5 {
		t.Errorf("GET writes: %d %+v", code, writes)
	}
	var reqs []voltsim.RequestLog
	if code := call(t, "GET", base+"/channels/1/requests", "", &reqs); code != 200 || len(reqs) == 0 {
		t.Errorf("GET requests: %d %+v", code, reqs)
	}
	if code := call(t, "DELETE", base+"/channels/1/requests", "", nil); code != 204 || len(sim.Requests(1)) != 0 {
		t.Errorf("DELETE requests: %d, %d left", code, len(sim.Requests(1)))
	}

	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/channels/1/points/T/1", `{"value": "high"}`, 400},
		{"PUT", "/channels/1/points/T/1", `{"valu": 1}`, 400},
		{"PUT", "/channels/1/points/T/1", `{}`, 400},
		{"PUT", "/channels/1/points/T/2", `{"value": 1e9}`, 422}, // int16 on the wire
		{"PUT", "/channels/1/points/Q/1", `{"value": 1}`, 400},
		{"PUT", "/channels/1/points/T/99", `{"value": 1}`, 404},
		{"GET", "/channels/7/points/T/1", "", 404},
		{"GET", "/channels/x/points/T/1", "", 400},
		{"POST", "/channels/1/faults", `{"mode": "explode"}`, 400},
		{"POST", "/channels/1/faults", `{"mode": "delay"}`, 400},
		{"POST", "/channels/1/faults", `{"mode": "none", "exeption_code": 4}`, 400},
		{"POST", "/channels/9/faults", `{"mode": "none"}`, 404},
		{"GET", "/channels/9/writes", "", 404},
	} {
		if code := call(t, c.method, base+c.path, c.body, nil); code != c.want {
			t.Errorf("%s %s %s: status %d, want %d", c.method, c.path, c.body, code, c.want)
		}
	}
}
