package testharness_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/voltageems/voltage/shared/testharness"
)

func TestRedisStartRestartStop(t *testing.T) {
	r := testharness.StartRedis(t)
	if !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(r.URL(), "/0") {
		t.Fatalf("URL() = %q, want redis://127.0.0.1:PORT/0", r.URL())
	}
	ctx := context.Background()
	c := r.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	// Persistence is off, so a restart comes back empty — and on the same address.
	addr := r.Addr
	r.Restart(t)
	if r.Addr != addr {
		t.Fatalf("restart moved the server from %s to %s", addr, r.Addr)
	}
	n, err := c.Exists(ctx, "k").Result()
	if err != nil {
		t.Fatalf("EXISTS after restart: %v", err)
	}
	if n != 0 {
		t.Fatalf("key survived a restart without persistence")
	}
	r.Stop(t)
	if r.Running() {
		t.Fatal("Running() = true after Stop")
	}
	down, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := c.Ping(down).Err(); err == nil {
		t.Fatal("PING succeeded after Stop")
	}
	r.Restart(t) // also starts a stopped server
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
}

func TestRedisAppendOnlySurvivesKill(t *testing.T) {
	r := testharness.StartRedisWith(t, testharness.RedisOptions{
		AppendOnly: true,
		Args:       []string{"--appendfsync", "always"}, // so Kill cannot lose the write
	})
	ctx := context.Background()
	c := r.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	r.Kill(t)
	if r.Running() {
		t.Fatal("Running() = true after Kill")
	}
	r.Restart(t)
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("GET after kill and restart = %q, %v; want v from the AOF", got, err)
	}
}

func TestTwoRedisServersDoNotShareState(t *testing.T) {
	a, b := testharness.StartRedis(t), testharness.StartRedis(t)
	if a.Addr == b.Addr {
		t.Fatalf("both servers on %s", a.Addr)
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n, err := b.Client(t).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS on the other server = %d, %v; want 0", n, err)
	}
}

func TestNATSWithJetStream(t *testing.T) {
	n := testharness.StartNATS(t)
	nc := n.Conn(t)
	sub, err := nc.SubscribeSync("greet")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := nc.Publish("greet", []byte("hi")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(msg.Data) != "hi" {
		t.Fatalf("NextMsg = %v, %v", msg, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.1", []byte("x"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("js publish = %+v, %v", ack, err)
	}
}

func TestNATSOptionsApply(t *testing.T) {
	n := testharness.StartNATS(t, func(o *server.Options) { o.JetStreamDomain = "site1" })
	nc := n.Conn(t)
	js, err := jetstream.NewWithDomain(nc, "site1")
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("account info in domain site1: %v", err)
	}
	if info.Domain != "site1" {
		t.Fatalf("domain = %q, want site1", info.Domain)
	}
}

// TestMosquittoAcceptsMQTT speaks a minimal MQTT 3.1.1 CONNECT, so the test checks
// the broker and not just an open port, without pulling in an MQTT client.
func TestMosquittoAcceptsMQTT(t *testing.T) {
	m := testharness.StartMosquitto(t)
	if m.URL() != "tcp://"+m.Addr {
		t.Fatalf("URL() = %q", m.URL())
	}
	mqttConnect(t, m.Addr)
	m.Restart(t)
	mqttConnect(t, m.Addr)
}

func mqttConnect(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial mosquitto: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	connect := []byte{
		0x10, 16, // CONNECT, remaining length
		0, 4, 'M', 'Q', 'T', 'T', 4, // protocol name and level 3.1.1
		0x02,  // clean session
		0, 60, // keep alive
		0, 4, 't', 'e', 's', 't', // client id
	}
	if _, err := c.Write(connect); err != nil {
		t.Fatalf("write CONNECT: %v", err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(bufio.NewReader(c), ack); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if !bytes.Equal(ack, []byte{0x20, 2, 0, 0}) {
		t.Fatalf("CONNACK = % x, want 20 02 00 00 (accepted)", ack)
	}
}

func TestFreePortIsBindable(t *testing.T) {
	p := testharness.FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", p, err)
	}
	l.Close()
}

func TestWaitForAndEventuallySucceed(t *testing.T) {
	start := time.Now()
	calls := 0
	testharness.WaitFor(t, 5*time.Second, "third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
	calls = 0
	testharness.Eventually(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("check called %d times, want 3", calls)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("polling took %v", time.Since(start))
	}
}

// fatalRecorder stands in for the test so a failing WaitFor can be observed.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runFailing(tb testing.TB, fn func(testing.TB)) string {
	f := &fatalRecorder{TB: tb}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestWaitForAndEventuallyFail(t *testing.T) {
	msg := runFailing(t, func(tb testing.TB) {
		testharness.WaitFor(tb, 20*time.Millisecond, "the impossible", func() bool { return false })
	})
	if !strings.Contains(msg, "the impossible") {
		t.Fatalf("WaitFor failure %q does not name what it waited for", msg)
	}
	msg = runFailing(t, func(tb testing.TB) {
		testharness.Eventually(tb, 20*time.Millisecond, func() error { return errors.New("still broken") })
	})
	if !strings.Contains(msg, "still broken") {
		t.Fatalf("Eventually failure %q does not carry the last error", msg)
	}
}

func TestRedisStartFailureQuotesTheLog(t *testing.T) {
	msg := runFailing(t, func(tb testing.TB) {
		testharness.StartRedisWith(tb, testharness.RedisOptions{Args: []string{"--no-such-directive", "1"}})
	})
	if !strings.Contains(msg, "no-such-directive") {
		t.Fatalf("start failure %q does not quote the server's log", msg)
	}
}

func TestStartLoggedFindsTheLineAndStops(t *testing.T) {
	cmd := exec.Command("sh", "-c", `echo starting >&2; echo "ready addr=127.0.0.1:99" >&2; exec sleep 30`)
	p, addr := testharness.StartLogged(t, cmd, regexp.MustCompile(`ready addr=(\S+)`), 5*time.Second)
	if addr != "127.0.0.1:99" {
		t.Fatalf("submatch %q", addr)
	}
	if err := p.Stop(t, syscall.SIGTERM, 5*time.Second); err == nil {
		t.Fatal("sleep killed by SIGTERM reported a clean exit")
	}
	if !strings.Contains(p.Logs(), "starting") {
		t.Fatalf("logs %q", p.Logs())
	}
}

func TestStartLoggedFailsWhenTheProcessExitsFirst(t *testing.T) {
	msg := runFailing(t, func(tb testing.TB) {
		testharness.StartLogged(tb, exec.Command("sh", "-c", "echo boom >&2; exit 3"), regexp.MustCompile("never"), 5*time.Second)
	})
	if !strings.Contains(msg, "exited") || !strings.Contains(msg, "boom") {
		t.Fatalf("failure %q does not say it exited and quote the log", msg)
	}
}

func TestReservedPortIsBelowTheEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatalf("read the ephemeral port range: %v", err)
	}
	low, _ := strconv.Atoi(strings.Fields(string(b))[0])
	port := testharness.ReservedPort(t)
	if port >= low || port < 10000 {
		t.Fatalf("ReservedPort = %d, want 10000 ≤ port < %d", port, low)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("the reserved port cannot be bound: %v", err)
	}
	l.Close()
}
