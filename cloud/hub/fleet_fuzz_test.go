package hub

import (
	"testing"
	"time"
)

// FuzzApply: any uplink message, on any subject, is folded into the fleet state
// or skipped with an error; it never panics, and a later good message still lands.
func FuzzApply(f *testing.F) {
	f.Add("ems.s.up.comsrv.1.T", []byte(`{"ts":1,"v":{"1":2},"t":{"1":3},"q":{"1":"stale"}}`))
	f.Add("ems.s.up.inst.2.M", []byte(`{"ts":1,"v":{"x":1}}`))
	f.Add("ems.s.up.alarm", []byte(`{"site":"s","id":"1-0","fields":{"key":"k","state":"active_unacked","alarm":"{}"}}`))
	f.Add("ems.s.up.status", []byte(`{"site":"s","ts":99999999999999}`))
	f.Add("ems.s.up.comsrv.1.T", []byte(`{"ts":0}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		r := newRegistry(time.Second)
		s, _ := r.add("s", "", true)
		_ = s.apply(subject, 1, data, time.Now())
		if err := s.apply("ems.s.up.comsrv.7.S", 2, []byte(`{"ts":5,"v":{"3":1}}`), time.Now()); err != nil {
			t.Fatalf("good message after %q: %v", subject, err)
		}
		if v := s.values("comsrv:7:S"); len(v) != 1 || v[0].Value != 1 {
			t.Fatalf("values = %+v", v)
		}
		_ = r.summary(s)
		_ = s.activeAlarms()
	})
}
