package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestSetChannelEnabled(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		id        uint32
		on        bool
		want      string
	}{
		{"replace block", "channels:\n  - id: 1 # pcs\n    enabled: true # on\n", 1, false,
			"channels:\n  - id: 1 # pcs\n    enabled: false # on\n"},
		{"add after id with comment", "# site\nchannels:\n  - id: 1  # pcs\n    name: a\n  - id: 2\n    name: b\n", 2, false,
			"# site\nchannels:\n  - id: 1  # pcs\n    name: a\n  - id: 2\n    enabled: false\n    name: b\n"},
		{"add when id is not first", "channels:\n  - name: a\n    id: 7\n", 7, true,
			"channels:\n  - name: a\n    id: 7\n    enabled: true\n"},
		{"flow item replace", "channels:\n  - {id: 3, enabled: yes, name: x}\n", 3, false,
			"channels:\n  - {id: 3, enabled: false, name: x}\n"},
		{"flow item add", "channels:\n  - {id: 3, name: x}\n", 3, false,
			"channels:\n  - {id: 3, enabled: false, name: x}\n"},
		{"unicode before", "# Kanäle — ünïcode\nchannels:\n  - id: 1\n    name: \"größe\"\n    enabled: false\n", 1, true,
			"# Kanäle — ünïcode\nchannels:\n  - id: 1\n    name: \"größe\"\n    enabled: true\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetChannelEnabled([]byte(tc.src), tc.id, tc.on)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"channels:\n  - id: 1\n", "channels: [", "other: 1\n", "channels: 5\n"} {
		if _, err := SetChannelEnabled([]byte(bad), 9, true); err == nil {
			t.Errorf("%q: no error for channel 9", bad)
		}
	}
}

// TestSetChannelEnabledOnTheDemoSite edits every channel of the shipped site and
// checks that only the enabled flag changed, as the loader reads the files.
func TestSetChannelEnabledOnTheDemoSite(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "config", "comsrv", "channels.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var before struct{ Channels []map[string]any }
	if err := yaml.Unmarshal(src, &before); err != nil {
		t.Fatal(err)
	}
	out := src
	for _, ch := range before.Channels {
		id := uint32(ch["id"].(uint64))
		if out, err = SetChannelEnabled(out, id, false); err != nil {
			t.Fatalf("channel %d: %v", id, err)
		}
	}
	var after struct{ Channels []map[string]any }
	if err := yaml.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	for i := range before.Channels {
		before.Channels[i]["enabled"] = false
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("more than enabled changed:\n%s", out)
	}
}

// FuzzSetChannelEnabled: whatever the file, the edit either fails or yields a
// document in which the channel's enabled is the value asked for.
func FuzzSetChannelEnabled(f *testing.F) {
	f.Add([]byte("channels:\n  - id: 1\n    enabled: true\n"), uint32(1), false)
	f.Add([]byte("channels:\n  - {id: 2, name: b}\n"), uint32(2), true)
	f.Add([]byte("channels:\n  - id: 3 # c\n    name: x\n"), uint32(3), false)
	f.Fuzz(func(t *testing.T, src []byte, id uint32, on bool) {
		out, err := SetChannelEnabled(src, id, on)
		if err != nil {
			return
		}
		var doc struct {
			Channels []struct {
				ID      uint32 `yaml:"id"`
				Enabled *bool  `yaml:"enabled"`
			} `yaml:"channels"`
		}
		if GuardYAML(func() error { return yaml.Unmarshal(out, &doc) }) != nil {
			return // the input did not decode either; the edit only promised one value
		}
		for _, ch := range doc.Channels {
			if ch.ID == id && (ch.Enabled == nil || *ch.Enabled != on) {
				t.Fatalf("channel %d enabled is %v after setting %v:\n%s", id, ch.Enabled, on, out)
			}
		}
	})
}
