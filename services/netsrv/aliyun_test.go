package netsrv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/netsrv"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/testharness"
)

// The sign-in strings for known inputs, against an HMAC computed by openssl.
func TestAliyunSignMatchesDocumentedAlgorithm(t *testing.T) {
	openssl := testharness.Binary(t, "openssl", "openssl")
	cases := []struct{ pk, dn, secret, clientID string }{
		{"a1FgRp7Wf3e", "pcs1", "Zk4mV1y6Lq7n0bXo8TfP2sQwE3rAdH5c", ""},
		{"a1FgRp7Wf3e", "meter-02", "s3cr3t", "edge-site-17"},
	}
	const ts = int64(1732573200000)
	for _, c := range cases {
		got := netsrv.AliyunSign(c.pk, c.dn, c.secret, c.clientID, ts)
		cid := c.clientID
		if cid == "" {
			cid = c.dn
		}
		content := "clientId" + cid + "deviceName" + c.dn + "productKey" + c.pk + "timestamp" + strconv.FormatInt(ts, 10)
		cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", c.secret)
		cmd.Stdin = strings.NewReader(content)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		fields := strings.Fields(string(out))
		want := fields[len(fields)-1]
		if got.Password != want {
			t.Errorf("password for %+v = %s, openssl says %s", c, got.Password, want)
		}
		if wantID := cid + "|securemode=2,signmethod=hmacsha256,timestamp=1732573200000|"; got.ClientID != wantID {
			t.Errorf("client id = %q, want %q", got.ClientID, wantID)
		}
		if wantUser := c.dn + "&" + c.pk; got.Username != wantUser {
			t.Errorf("user name = %q, want %q", got.Username, wantUser)
		}
	}
}

// The same credentials log in to a Mosquitto with a password file made by
// mosquitto_passwd; properties arrive as Alink property posts; a property set
// for a point not on the allow-list and a malformed one are answered with an
// error reply and submit nothing. A device with a wrong secret is refused.
func TestAliyunLoginPropertyPostAndRefusedSets(t *testing.T) {
	const pk, dn, secret = "a1FgRp7Wf3e", "pcs1", "Zk4mV1y6Lq7n0bXo8TfP2sQwE3rAdH5c"
	now := time.UnixMilli(1732573200000)
	creds := netsrv.AliyunSign(pk, dn, secret, "", now.UnixMilli())
	passwd := testharness.Binary(t, "mosquitto_passwd", "mosquitto")
	pwFile := filepath.Join(t.TempDir(), "passwd")
	for i, up := range [][2]string{{creds.Username, creds.Password}, {"cloud", "cloud-pw"}} {
		args := []string{"-b", pwFile, up[0], up[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	broker := testharness.StartMosquittoWith(t, testharness.MosquittoOptions{PasswordFile: pwFile})
	cloud := []string{"-u", "cloud", "-P", "cloud-pw"}
	sub := subscribe(t, broker.Addr, "/sys/#", cloud...)
	sub.ready(broker.Addr, "/sys/probe", cloud...)

	s := newSite(t)
	s.links(fmt.Sprintf(`
links:
  - name: ali
    type: aliyun
    broker: %[1]s
    protocol: "3.1.1"
    aliyun: {product_key: %[2]s, device_name: %[3]s, device_secret: %[4]s}
    aliases: {ActivePower: "1:T:1"}
    allow_write:
      - {channel: 1, types: [A], points: [1]}
  - name: wrong
    type: aliyun
    broker: %[1]s
    aliyun: {product_key: %[2]s, device_name: %[3]s, device_secret: not-the-secret}
`, broker.URL(), pk, dn, secret))
	r := s.startWith(func(c *netsrv.Config) { c.Now = func() time.Time { return now } })

	s.changes(1, 0, 3)
	post := "/sys/" + pk + "/" + dn + "/thing/event/property/post"
	testharness.Eventually(t, 20*time.Second, func() error {
		seen := map[float64]bool{}
		for _, m := range sub.on(post) {
			var a struct {
				ID      string `json:"id"`
				Version string `json:"version"`
				Method  string `json:"method"`
				Params  map[string]struct {
					Value float64 `json:"value"`
					Time  int64   `json:"time"`
				} `json:"params"`
			}
			if err := json.Unmarshal([]byte(m.Payload), &a); err != nil {
				return fmt.Errorf("not Alink JSON: %v: %s", err, m.Payload)
			}
			if a.ID == "" || a.Version != "1.0" || a.Method != "thing.event.property.post" || len(a.Params) != 1 {
				return fmt.Errorf("Alink post: %s", m.Payload)
			}
			p, ok := a.Params["ActivePower"]
			if !ok || p.Time == 0 {
				return fmt.Errorf("Alink post without ActivePower and its time: %s", m.Payload)
			}
			seen[p.Value] = true
		}
		if len(seen) != 3 {
			return fmt.Errorf("values %v received, want 0, 1, 2", seen)
		}
		return nil
	})
	if ls := r.linkStatus(t, "wrong"); ls.Connected {
		t.Errorf("a device with a wrong secret got in: %+v", ls)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		if ls := r.linkStatus(t, "wrong"); ls.LastError == "" {
			return fmt.Errorf("no error reported for the refused device: %+v", ls)
		}
		return nil
	})

	set := "/sys/" + pk + "/" + dn + "/thing/service/property/set"
	pub := testharness.Binary(t, "mosquitto_pub", "mosquitto-clients")
	host, port := broker.Addr[:strings.LastIndex(broker.Addr, ":")], broker.Port()
	send := func(payload string) {
		out, err := exec.Command(pub, append([]string{"-h", host, "-p", port, "-t", set, "-m", payload, "-q", "1"}, cloud...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	reply := func(id string) map[string]any {
		var got map[string]any
		testharness.Eventually(t, 15*time.Second, func() error {
			for _, m := range sub.on(set + "_reply") {
				var r map[string]any
				if json.Unmarshal([]byte(m.Payload), &r) == nil && r["id"] == id {
					got = r
					return nil
				}
			}
			return fmt.Errorf("no reply with id %s", id)
		})
		return got
	}
	send(`{"id":"101","version":"1.0","params":{"c1_A_2":5},"method":"thing.service.property.set"}`)
	if r := reply("101"); r["code"] != 460.0 || !strings.Contains(fmt.Sprint(r["message"]), "allow_write") {
		t.Errorf("set of a point not on the allow-list: reply %v", r)
	}
	send(`{"id":"102","version":"1.0","params":{"c1_A_1":"high"},"method":"thing.service.property.set"}`)
	if r := reply("102"); r["code"] != 460.0 || !strings.Contains(fmt.Sprint(r["message"]), "not a number") {
		t.Errorf("malformed set: reply %v", r)
	}
	send(`{"id":"103","params":`)
	if n, err := s.rdb.XLen(context.Background(), keyspace.ChannelCommands(1)).Result(); err != nil || n != 0 {
		t.Errorf("refused sets submitted %d commands (err %v)", n, err)
	}
}
