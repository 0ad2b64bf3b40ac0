package netsrv

import (
	"math"
	"testing"
)

// FuzzParseWrite: any bytes on a generic downlink topic give a write or a reason,
// never a panic, and a write has a point and a finite value.
func FuzzParseWrite(f *testing.F) {
	for _, s := range []string{
		`{"id":"w1","point":"1:A:1","value":42.5}`, `{"id":7,"point":"c1_C_2","value":true}`,
		`{"point":"inst:1:A:2","value":{"value":3}}`, `{"point":"1:A:1","value":"x"}`, `{"value":1}`,
		`{"point":"1:A:1"}`, `{"point":"inst:5:A:charge","value":2}`, `[]`, `null`, `{"point":"1:A:1","value":1e400}`, ``, `{"id":{"a":1},"point":"","value":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWrite(b)
		if len(w.ID) > 64 {
			t.Fatalf("id of %d bytes kept", len(w.ID))
		}
		if err != nil {
			return
		}
		if w.Point == "" || math.IsNaN(w.Value) || math.IsInf(w.Value, 0) {
			t.Fatalf("accepted %+v from %q", w, b)
		}
		// Resolving the point name never panics either.
		_, _ = parseWriteTarget(w.Point)
	})
}

// FuzzParseAliyunPropertySet: the same for the Alink property set.
func FuzzParseAliyunPropertySet(f *testing.F) {
	for _, s := range []string{
		`{"id":"101","version":"1.0","params":{"PowerSetpoint":-12.5},"method":"thing.service.property.set"}`,
		`{"id":1,"params":{"a":true,"b":{"value":2}}}`, `{"id":"1","params":{}}`, `{"params":{"a":"x"}}`,
		`{"method":"thing.event.property.post","params":{"a":1}}`, `{"params":[1]}`, `{`, `0`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, writes, err := ParseAliyunPropertySet(b)
		if len(id) > 64 {
			t.Fatalf("id of %d bytes kept", len(id))
		}
		if err != nil {
			if writes != nil {
				t.Fatalf("writes %v returned with error %v", writes, err)
			}
			return
		}
		if len(writes) == 0 || len(writes) > maxDownlinkWrites {
			t.Fatalf("%d writes accepted", len(writes))
		}
		for i, w := range writes {
			if math.IsNaN(w.Value) || math.IsInf(w.Value, 0) {
				t.Fatalf("non-finite value %v", w.Value)
			}
			if i > 0 && writes[i-1].Name >= w.Name {
				t.Fatalf("writes not sorted: %v", writes)
			}
		}
	})
}

// FuzzParsePointRef: a point name from the cloud parses to a ref that prints back
// to a name that parses to the same ref.
func FuzzParsePointRef(f *testing.F) {
	for _, s := range []string{"1:A:5", "1:YT:5", "inst:5:M:2", "c1_T_3", "i5_M_2", "c1__3", "1:A:-1", "inst::A:1", "c+1_T_1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parsePointRef(s)
		if err != nil {
			return
		}
		for _, again := range []string{r.String(), r.defaultName()} {
			r2, err := parsePointRef(again)
			if err != nil || r2 != r {
				t.Fatalf("%q → %+v → %q → %+v, %v", s, r, again, r2, err)
			}
		}
	})
}
