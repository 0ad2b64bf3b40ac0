package redisx

import (
	"errors"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		v       string
		tooOld  bool
		invalid bool
	}{
		{v: "7.0.15"},
		{v: "6.2.0"},
		{v: "6.2"},
		{v: "8.0.1"},
		{v: "10.0.0"},
		{v: "6.0.16", tooOld: true},
		{v: "5.0.14", tooOld: true},
		{v: "6.1.99", tooOld: true},
		{v: "", invalid: true},
		{v: "seven", invalid: true},
		{v: "7.x.1", invalid: true},
		{v: "-1.0.0", invalid: true},
	} {
		err := checkVersion(tc.v)
		switch {
		case tc.tooOld:
			if !errors.Is(err, ErrTooOld) {
				t.Errorf("checkVersion(%q) = %v, want ErrTooOld", tc.v, err)
			}
		case tc.invalid:
			if err == nil || errors.Is(err, ErrTooOld) {
				t.Errorf("checkVersion(%q) = %v, want a malformed-version error", tc.v, err)
			}
		default:
			if err != nil {
				t.Errorf("checkVersion(%q) = %v, want nil", tc.v, err)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":       "redis://127.0.0.1:6379/0",
		"redis://:secret@host:6379/0":    "redis://:xxxxx@host:6379/0",
		"rediss://user:secret@host:6380": "rediss://user:xxxxx@host:6380",
		"redis://user@host":              "redis://user@host",
		"not a url":                      "not a url",
		"unix:///run/redis.sock?db=1":    "unix:///run/redis.sock?db=1",
		"unix://u:p@/run/redis.sock":     "unix://u:xxxxx@/run/redis.sock",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
