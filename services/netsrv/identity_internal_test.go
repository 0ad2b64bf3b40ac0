package netsrv

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The client id each link type presents: the thing name for AWS, the signed
// Aliyun client id (fresh timestamp per connection), the configured or derived
// id for a generic broker.
func TestLinkIdentities(t *testing.T) {
	fc, err := Parse("netsrv.yaml", []byte(`links:
  - {name: aws, type: aws_iot, broker: 'tls://h:8883', aws: {thing: gw-17}, tls: {cert: c, key: k}}
  - {name: ali, type: aliyun, broker: 'tls://h:1883', aliyun: {product_key: pk, device_name: dn, device_secret: s}}
  - {name: ali311, type: aliyun, broker: 'tls://h:1883', protocol: "3.1.1", aliyun: {product_key: pk, device_name: dn, device_secret: s}}
  - {name: gen, type: mqtt, broker: 'tcp://h:1883', username: u, password: p}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1000)
	s := &server{site: "site-1", now: func() time.Time { now = now.Add(time.Second); return now }}
	ids := func(l link) identity {
		switch v := l.(type) {
		case *mqtt5Link:
			return v.opts.identity
		case *mqtt311Link:
			return v.opts.identity
		}
		t.Fatalf("%T is not an MQTT link", l)
		return nil
	}
	for i := range fc.Links {
		l := &fc.Links[i]
		l.TLS = nil // the test has no certificate files; identity does not depend on them
		lk, err := s.newLink(l, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		id, user, pass := ids(lk)()
		switch l.Name {
		case "aws":
			if id != "gw-17" {
				t.Errorf("aws client id %q, want the thing name", id)
			}
		case "ali":
			id2, _, pass2 := ids(lk)()
			if !strings.HasPrefix(id, "dn|securemode=2,signmethod=hmacsha256,timestamp=") || user != "dn&pk" || id == id2 || pass == pass2 {
				t.Errorf("aliyun identity %q %q %q, then %q %q: want a fresh signature per connection", id, user, pass, id2, pass2)
			}
		case "ali311":
			// The 3.1.1 client fixes its client id: the signature must match it.
			id2, _, pass2 := ids(lk)()
			if _, ok := lk.(*mqtt311Link); !ok || id != id2 || pass != pass2 {
				t.Errorf("3.1.1 aliyun link %T: identity %q %q, then %q %q", lk, id, pass, id2, pass2)
			}
			ts := strings.TrimSuffix(strings.TrimPrefix(id, "dn|securemode=2,signmethod=hmacsha256,timestamp="), "|")
			var ms int64
			for _, c := range ts {
				ms = ms*10 + int64(c-'0')
			}
			if want := AliyunSign("pk", "dn", "s", "", ms); want.Password != pass || want.ClientID != id {
				t.Errorf("3.1.1 aliyun password does not sign the client id's timestamp")
			}
		case "gen":
			if id != "netsrv-site-1-gen" || user != "u" || pass != "p" {
				t.Errorf("generic identity %q %q %q", id, user, pass)
			}
		}
	}
}
