package netsrv_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/testharness"
)

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The status API, metrics and readiness, and a reload that adds a link while the
// unchanged one keeps its connection (and its counters); an invalid file is refused.
func TestStatusAPIMetricsAndReload(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquitto(t)
	linkA := fmt.Sprintf(`
links:
  - name: a
    type: mqtt
    broker: %s
`, broker.URL())
	s.links(linkA)
	reload := make(chan struct{})
	r := s.startWith(func(c *netsrv.Config) { c.Reload = reload })
	s.changes(1, 0, 5)
	testharness.Eventually(t, 20*time.Second, func() error {
		if ls := r.linkStatus(t, "a"); !ls.Connected || ls.SentPoints < 5 {
			return fmt.Errorf("%+v", ls)
		}
		return nil
	})
	if code, body := get(t, r.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		_, body := get(t, r.url+"/metrics")
		for _, want := range []string{`netsrv_link_connected{link="a"} 1`, `netsrv_link_sent_points_total{link="a"} 5`, `netsrv_link_queued{link="a",where="spool"} 0`} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
	if code, _ := get(t, r.url+"/links/nope"); code != http.StatusNotFound {
		t.Errorf("/links/nope = %d", code)
	}
	sentBefore := r.linkStatus(t, "a").SentMessages

	s.links(linkA + "  - {name: b, type: mqtt, broker: 'tcp://127.0.0.1:1'}\n")
	reload <- struct{}{}
	testharness.Eventually(t, 10*time.Second, func() error {
		_, body := get(t, r.url+"/links")
		if !strings.Contains(body, `"name":"b"`) {
			return fmt.Errorf("/links: %s", body)
		}
		return nil
	})
	if ls := r.linkStatus(t, "a"); ls.SentMessages != sentBefore || !ls.Connected {
		t.Errorf("unchanged link a was restarted by the reload: %+v (sent before %d)", ls, sentBefore)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		if code, body := get(t, r.url+"/readyz"); code == http.StatusOK || !strings.Contains(body, "link b") {
			return fmt.Errorf("/readyz = %d %s", code, body)
		}
		return nil
	})

	s.links("links:\n  - {name: c, type: nope}\n")
	reload <- struct{}{}
	reload <- struct{}{} // the second send returns once the first reload was handled
	_, body := get(t, r.url+"/links")
	if !strings.Contains(body, `"name":"a"`) || !strings.Contains(body, `"name":"b"`) {
		t.Errorf("an invalid reload changed the running links: %s", body)
	}
}

// Redis going away never stops netsrv: /readyz says so, and forwarding resumes
// when Redis is back (here empty: the group is re-created).
func TestRedisOutageResumes(t *testing.T) {
	s := newSite(t)
	broker := testharness.StartMosquitto(t)
	sub := subscribe(t, broker.Addr, "r/#")
	sub.ready(broker.Addr, "r/probe")
	s.links(fmt.Sprintf("links:\n  - {name: r, type: mqtt, broker: '%s', topic: 'r/{{.Source}}'}\n", broker.URL()))
	r := s.start()
	s.changes(1, 0, 5)
	waitValues(t, sub, "r/", "c1_T_1", 0, 5, 20*time.Second)
	s.redis.Stop(t)
	testharness.Eventually(t, 20*time.Second, func() error {
		if code, body := get(t, r.url+"/readyz"); code == http.StatusOK || !strings.Contains(body, "redis") {
			return fmt.Errorf("/readyz = %d %s", code, body)
		}
		return nil
	})
	s.redis.Restart(t)
	s.changes(1, 10, 5)
	waitValues(t, sub, "r/", "c1_T_1", 10, 5, 30*time.Second)
}
