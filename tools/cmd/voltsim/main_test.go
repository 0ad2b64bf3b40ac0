package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const mappingHeader = "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n"

var site = map[string]string{
	"site.yaml": "site: {id: mbpoll-test}\n",
	// Port 502 is never bound: the tests use --listen-override.
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: pcs1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
  - {id: 2, name: meter1, protocol: modbus_tcp, parameters: {host: 127.0.0.1, port: 502}}
`,
	"comsrv/1/telemetry.csv": "point_id,signal_name,scale\n1,t_u16,1\n2,t_i16,1\n3,t_f32,1\n4,t_i32,1\n5,t_input,0.01\n",
	"comsrv/1/mapping/telemetry_mapping.csv": mappingHeader +
		"1,1,3,0,uint16,,\n2,1,3,1,int16,,\n3,1,3,2,float32,ABCD,\n4,1,3,4,int32,CDAB,\n5,1,4,10,uint16,,\n",
	"comsrv/1/signal.csv":                     "point_id,signal_name\n1,s_a\n2,s_b\n",
	"comsrv/1/mapping/signal_mapping.csv":     mappingHeader + "1,1,2,0,bool,,\n2,1,2,1,bool,,\n",
	"comsrv/1/adjustment.csv":                 "point_id,signal_name\n1,a_limit\n",
	"comsrv/1/mapping/adjustment_mapping.csv": mappingHeader + "1,1,6,20,uint16,,\n",
	"comsrv/2/telemetry.csv":                  "point_id,signal_name\n1,m_x\n",
	"comsrv/2/mapping/telemetry_mapping.csv":  mappingHeader + "1,1,3,0,uint16,,\n",
}

func writeSite(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	for name, content := range site {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lockedBuffer collects the log, written from the simulator's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// started is a voltsim running in-process: the channel addresses it printed and
// its control API.
type started struct {
	channels map[string]string // "1" → host:port
	control  string
}

// startVoltsim runs the program until the test ends and checks that it then exits 0
// within 2 s.
func startVoltsim(t *testing.T, args ...string) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, stderr)
		_ = pw.Close()
		exit <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("voltsim exited %d; log:\n%s", code, stderr)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("voltsim did not stop within 2 s; log:\n%s", stderr)
		}
	})

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	channelLine := regexp.MustCompile(`^channel (\d+) \S+ modbus_tcp listening on (\S+) \((\d+) points\)$`)
	s := started{channels: map[string]string{}}
	deadline := time.After(5 * time.Second)
	for s.control == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("voltsim stopped before printing its addresses; log:\n%s", stderr)
			}
			if m := channelLine.FindStringSubmatch(line); m != nil {
				s.channels[m[1]] = m[2]
			} else if a, ok := strings.CutPrefix(line, "control API on http://"); ok {
				s.control = a
			} else {
				t.Errorf("unexpected output line %q", line)
			}
		case <-deadline:
			t.Fatalf("no addresses printed within 5 s; log:\n%s", stderr)
		}
	}
	go func() { // drain, so a late line could never block the program
		for range lines {
		}
	}()
	return s
}

func mbpoll(t *testing.T, args ...string) []string {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Fatalf("mbpoll is needed as an independent Modbus client and is not installed: apt-get install -y mbpoll (run apt-get update first if apt cannot find it)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Values are printed as "[ref]: <tab>value", e.g. "[1]: 	65531 (-5)".
	var vals []string
	for _, m := range regexp.MustCompile(`(?m)^\[\d+\]:\s+(\S+)`).FindAllStringSubmatch(string(out), -1) {
		vals = append(vals, m[1])
	}
	return vals
}

func put(t *testing.T, control, path string, v float64) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "http://"+control+path, strings.NewReader(fmt.Sprintf(`{"value": %v}`, v)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

func TestMbpollReadsAndWritesARunningVoltsim(t *testing.T) {
	s := startVoltsim(t, "--config", writeSite(t), "--listen-override", "127.0.0.1",
		"--control", "127.0.0.1:0", "--log-level", "debug", "--log-format", "json")
	if len(s.channels) != 2 || s.channels["1"] == s.channels["2"] {
		t.Fatalf("channels printed: %v", s.channels)
	}
	_, port, _ := net.SplitHostPort(s.channels["1"])
	for path, v := range map[string]float64{
		"/channels/1/points/T/1": 4321, "/channels/1/points/T/2": -5, "/channels/1/points/T/3": 3.25,
		"/channels/1/points/T/4": -100000, "/channels/1/points/T/5": 2.5, "/channels/1/points/S/2": 1,
	} {
		put(t, s.control, path, v)
	}
	common := []string{"-m", "tcp", "-p", port, "-a", "1", "-0", "-1", "-o", "1"}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: mbpoll read %q, want %q", what, got, want)
		}
	}
	check("holding 0..1", mbpoll(t, append(common, "-t", "4", "-r", "0", "-c", "2", "127.0.0.1")...), "4321", "65531")
	check("float32 big-endian words", mbpoll(t, append(common, "-t", "4:float", "-B", "-r", "2", "-c", "1", "127.0.0.1")...), "3.25")
	// mbpoll's default word order for 32-bit values is low word first: CDAB.
	check("int32 low word first", mbpoll(t, append(common, "-t", "4:int", "-r", "4", "-c", "1", "127.0.0.1")...), "-100000")
	check("input register", mbpoll(t, append(common, "-t", "3", "-r", "10", "-c", "1", "127.0.0.1")...), "250")
	check("discrete inputs", mbpoll(t, append(common, "-t", "1", "-r", "0", "-c", "2", "127.0.0.1")...), "0", "1")

	// A write from mbpoll reaches the device once, with its engineering value.
	mbpoll(t, append(common, "-t", "4", "-r", "20", "127.0.0.1", "1234")...)
	resp, err := http.Get("http://" + s.control + "/channels/1/writes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var writes []struct {
		Type  string  `json:"type"`
		Point uint32  `json:"point"`
		Value float64 `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&writes); err != nil {
		t.Fatal(err)
	}
	if len(writes) != 1 || writes[0].Type != "A" || writes[0].Point != 1 || writes[0].Value != 1234 {
		t.Errorf("writes after mbpoll wrote 1234: %+v", writes)
	}
}

func TestBadFlagsAndConfigExit2(t *testing.T) {
	dir := writeSite(t)
	for name, args := range map[string][]string{
		"log format":     {"--config", dir, "--log-format", "xml", "--control", ""},
		"unknown flag":   {"--config", dir, "--colour"},
		"no site folder": {"--config", filepath.Join(dir, "missing")},
		"profiles file":  {"--config", dir, "--profiles", filepath.Join(dir, "none.yaml")},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", name, code, errOut.String())
		}
		if errOut.Len() == 0 {
			t.Errorf("%s: nothing said on stderr", name)
		}
	}
}
