package netsrv_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/testharness"
)

// netsrv (the binary) is killed with SIGKILL during a broker outage, with one
// link's backlog in its spool and another's still pending in the stream, and
// more changes arrive while it is dead: after the restart every value arrives
// exactly once on both links.
func TestKill9DuringOutageNothingLostNothingTwice(t *testing.T) {
	bin := testharness.BuildBinary(t, "./cmd/netsrv")
	s := newSite(t)
	broker := testharness.StartMosquittoWith(t, testharness.MosquittoOptions{PersistenceDir: t.TempDir()})
	sub := subscribe(t, broker.Addr, "k/#")
	sub.ready(broker.Addr, "k/probe")
	s.links(fmt.Sprintf(`
links:
  - name: spooled
    type: mqtt
    broker: %[1]s
    topic: "k/spooled/{{.Source}}"
    spool: {after_s: 1}
    replay_rate: 2000
  - name: streamed
    type: mqtt
    broker: %[1]s
    topic: "k/streamed/{{.Source}}"
    spool: {after_s: 3600}
`, broker.URL()))
	addr := "127.0.0.1:" + strconv.Itoa(testharness.FreePort(t))
	start := func() *testharness.LoggedProcess {
		cmd := exec.Command(bin, "--config", s.dir, "--log-level", "info")
		cmd.Env = append(os.Environ(), "VOLTAGE_HTTP_ADDR="+addr)
		p, _ := testharness.StartLogged(t, cmd, regexp.MustCompile(`netsrv running`), 30*time.Second)
		return p
	}
	status := func(name string) (netsrv.LinkStatus, error) {
		var ls netsrv.LinkStatus
		resp, err := http.Get("http://" + addr + "/links/" + name)
		if err != nil {
			return ls, err
		}
		defer resp.Body.Close()
		return ls, json.NewDecoder(resp.Body).Decode(&ls)
	}

	p := start()
	s.changes(1, 0, 50)
	waitValues(t, sub, "k/spooled/", "c1_T_1", 0, 50, 20*time.Second)
	waitValues(t, sub, "k/streamed/", "c1_T_1", 0, 50, 20*time.Second)
	// Stop the broker only after netsrv got every PUBACK: a PUBACK lost to the stop
	// itself would cause the one at-least-once resend this test is not about.
	testharness.Eventually(t, 10*time.Second, func() error {
		for _, name := range []string{"spooled", "streamed"} {
			if ls, err := status(name); err != nil || ls.SentPoints < 50 {
				return fmt.Errorf("link %s: %+v, %v", name, ls, err)
			}
		}
		return nil
	})
	sub.ready(broker.Addr, "k/probe")

	broker.Stop(t)
	s.changes(1, 50, 100)
	testharness.Eventually(t, 20*time.Second, func() error {
		ls, err := status("spooled")
		if err != nil {
			return err
		}
		if ls.Queued.Spool == 0 {
			return fmt.Errorf("nothing spooled yet: %+v", ls)
		}
		st, err := status("streamed")
		if err != nil {
			return err
		}
		if st.Queued.StreamPending+max(st.Queued.StreamLag, 0) == 0 {
			return fmt.Errorf("nothing queued in the stream yet: %+v", st)
		}
		return nil
	})
	_ = p.Stop(t, syscall.SIGKILL, 10*time.Second) // killed: its exit status is the signal

	s.changes(1, 150, 50) // while netsrv is dead
	broker.Start(t)
	p2 := start()
	waitValues(t, sub, "k/spooled/", "c1_T_1", 0, 200, 30*time.Second)
	waitValues(t, sub, "k/streamed/", "c1_T_1", 0, 200, 30*time.Second)
	checkExactlyOnce(t, valueCounts(t, sub.on("k/spooled/"), "c1_T_1"), 0, 200)
	checkExactlyOnce(t, valueCounts(t, sub.on("k/streamed/"), "c1_T_1"), 0, 200)
	if t.Failed() {
		for _, m := range sub.all() {
			t.Logf("%s %.200s", m.Topic, m.Payload)
		}
	}
	checkOrder(t, sub.on("k/spooled/"), "c1_T_1")
	checkOrder(t, sub.on("k/streamed/"), "c1_T_1")
	if err := p2.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("netsrv did not stop on SIGTERM: %v\n%s", err, p2.Logs())
	}
}
