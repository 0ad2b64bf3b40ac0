package statestore_test

import (
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

func TestDecodeMessage(t *testing.T) {
	m, err := statestore.DecodeMessage([]byte(`{"ts":1000,"v":{"1":2.5,"2":-1},"t":{"2":990},"q":{"2":"stale","3":"invalid","4":"bogus"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.TS != 1000 || m.V["1"] != 2.5 || m.V["2"] != -1 || len(m.V) != 2 {
		t.Fatalf("decoded %+v", m)
	}
	if m.PointTS("1") != 1000 || m.PointTS("2") != 990 {
		t.Fatalf("PointTS = %d, %d", m.PointTS("1"), m.PointTS("2"))
	}
	for id, want := range map[string]point.Quality{"1": point.Good, "2": point.Stale, "3": point.Invalid, "4": point.Invalid} {
		if got := m.Quality(id); got != want {
			t.Errorf("Quality(%s) = %v, want %v", id, got, want)
		}
	}
}

func TestDecodeMessageRejectsBadInput(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"v":{"1":1}}`, `{"ts":"soon"}`, `{"ts":1,"v":{"1":"x"}}`, `{"ts":1,"v":{"1":1}`} {
		_, err := statestore.DecodeMessage([]byte(in))
		if err == nil {
			t.Errorf("DecodeMessage(%q) succeeded", in)
		} else if !strings.HasPrefix(err.Error(), "decode change message") {
			t.Errorf("DecodeMessage(%q) error %q lacks context", in, err)
		}
	}
}
