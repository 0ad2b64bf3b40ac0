package subjects_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/subjects"
	"github.com/voltageems/voltage/shared/testharness"
)

func TestSubjectNames(t *testing.T) {
	cases := []struct{ got, want string }{
		{subjects.SiteAll("demo-site"), "ems.demo-site.>"},
		{subjects.Up("demo-site"), "ems.demo-site.up.>"},
		{subjects.Down("demo-site"), "ems.demo-site.down.>"},
		{subjects.ChannelUp("demo-site", 1, point.Telemetry), "ems.demo-site.up.comsrv.1.T"},
		{subjects.ChannelUp("demo-site", 4294967295, point.Signal), "ems.demo-site.up.comsrv.4294967295.S"},
		{subjects.InstanceUp("demo-site", 7), "ems.demo-site.up.inst.7.M"},
		{subjects.AlarmUp("demo-site"), "ems.demo-site.up.alarm"},
		{subjects.StatusUp("demo-site"), "ems.demo-site.up.status"},
		{subjects.DownCommand("demo-site"), "ems.demo-site.down.cmd"},
		{subjects.DownAPI("demo-site"), "ems.demo-site.down.api"},
		{subjects.UplinkStream, "UPLINK"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// literals are every concrete subject of one site.
func literals(site string) []string {
	return []string{
		subjects.ChannelUp(site, 1, point.Telemetry),
		subjects.ChannelUp(site, 2, point.Signal),
		subjects.InstanceUp(site, 3),
		subjects.AlarmUp(site),
		subjects.StatusUp(site),
		subjects.DownCommand(site),
		subjects.DownAPI(site),
	}
}

// TestScopes checks the wildcards against nats-server's own matcher: a site's scope
// holds all its subjects and none of another site's, even one whose id shares a
// prefix, and up/down split the subjects by direction.
func TestScopes(t *testing.T) {
	for _, s := range literals("site-a") {
		if !server.IsValidLiteralSubject(s) {
			t.Errorf("%q is not a valid literal subject", s)
		}
		if !server.SubjectMatchesFilter(s, subjects.SiteAll("site-a")) {
			t.Errorf("%q is outside SiteAll(site-a)", s)
		}
		if server.SubjectMatchesFilter(s, subjects.SiteAll("site-ab")) || server.SubjectMatchesFilter(s, subjects.SiteAll("site")) {
			t.Errorf("%q matches another site's scope", s)
		}
		up := server.SubjectMatchesFilter(s, subjects.Up("site-a"))
		down := server.SubjectMatchesFilter(s, subjects.Down("site-a"))
		if up == down {
			t.Errorf("%q: in up scope %v, in down scope %v; want exactly one", s, up, down)
		}
		if down != (s == subjects.DownCommand("site-a") || s == subjects.DownAPI("site-a")) {
			t.Errorf("%q: in down scope %v", s, down)
		}
	}
	for _, f := range []string{subjects.SiteAll("x"), subjects.Up("x"), subjects.Down("x")} {
		if !server.IsValidSubject(f) {
			t.Errorf("%q is not a valid subject filter", f)
		}
	}
}

// TestScopeRouting publishes every subject of two sites through a real server and
// checks that a subscriber to one site's scope receives exactly that site's messages.
func TestScopeRouting(t *testing.T) {
	nc := testharness.StartNATS(t).Conn(t)
	sub, err := nc.SubscribeSync(subjects.SiteAll("site-a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range []string{"site-b", "site-a"} {
		for _, s := range literals(site) {
			if err := nc.Publish(s, []byte(site)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	want := literals("site-a")
	for i, w := range want {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i+1, len(want), err)
		}
		if msg.Subject != w {
			t.Errorf("message %d on %q, want %q", i+1, msg.Subject, w)
		}
	}
	if n, _, _ := sub.Pending(); n != 0 {
		t.Errorf("%d more messages reached the site-a subscriber", n)
	}
}

func TestValidSiteID(t *testing.T) {
	for _, id := range []string{"a", "demo-site", "Site_01", "0", strings.Repeat("x", subjects.MaxSiteIDLen)} {
		if err := subjects.ValidSiteID(id); err != nil {
			t.Errorf("ValidSiteID(%q) = %v, want nil", id, err)
		}
	}
	bad := map[string]string{
		"":          "empty",
		"demo.site": `'.'`,
		"site*":     `'*'`,
		"site>":     `'>'`,
		"my site":   `' '`,
		"tab\tsite": `'\t'`,
		"säge":      `'ä'`,
		"a$b":       `'$'`,
		strings.Repeat("x", subjects.MaxSiteIDLen+1): "longer than 64",
	}
	for id, want := range bad {
		err := subjects.ValidSiteID(id)
		if err == nil {
			t.Errorf("ValidSiteID(%q) = nil, want an error", id)
			continue
		}
		if !errors.Is(err, subjects.ErrSiteID) {
			t.Errorf("ValidSiteID(%q) = %v, does not wrap ErrSiteID", id, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ValidSiteID(%q) = %q, want it to mention %s", id, err, want)
		}
	}
}

// FuzzValidSiteID checks that every accepted id builds valid subjects that stay
// inside the site's own scope.
func FuzzValidSiteID(f *testing.F) {
	for _, s := range []string{"demo-site", "a.b", "*", ">", "", " x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if subjects.ValidSiteID(id) != nil {
			return
		}
		for _, s := range literals(id) {
			if !server.IsValidLiteralSubject(s) || !server.SubjectMatchesFilter(s, subjects.SiteAll(id)) {
				t.Fatalf("site %q: subject %q is not a literal inside its scope", id, s)
			}
		}
	})
}

func TestParseUp(t *testing.T) {
	good := map[string]subjects.UpSubject{
		subjects.ChannelUp("a", 7, point.Telemetry): {Site: "a", Kind: subjects.KindChannel, ID: 7, Family: "T"},
		subjects.ChannelUp("a", 0, point.Signal):    {Site: "a", Kind: subjects.KindChannel, ID: 0, Family: "S"},
		subjects.InstanceUp("b-1", 42):              {Site: "b-1", Kind: subjects.KindInstance, ID: 42, Family: "M"},
		subjects.AlarmUp("c"):                       {Site: "c", Kind: subjects.KindAlarm},
		subjects.StatusUp("c"):                      {Site: "c", Kind: subjects.KindStatus},
	}
	for s, want := range good {
		got, ok := subjects.ParseUp(s)
		if !ok || got != want {
			t.Errorf("ParseUp(%q) = %+v, %v; want %+v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "ems", "ems.a.up", "ems.a.down.cmd", "ems.a.up.comsrv.1.C", "ems.a.up.comsrv.01.T",
		"ems.a.up.comsrv.x.T", "ems.a.up.inst.1.T", "ems.a.up.alarm.x", "ems.*.up.status", "x.a.up.status",
		"ems.a.up.comsrv.4294967296.T", "ems.a.sync.S.x"} {
		if got, ok := subjects.ParseUp(s); ok {
			t.Errorf("ParseUp(%q) = %+v, want not ok", s, got)
		}
	}
	if got := subjects.SiteFromSubject(subjects.StatusUp("x_1")); got != "x_1" {
		t.Errorf("SiteFromSubject = %q", got)
	}
	if !server.SubjectMatchesFilter(subjects.StatusUp("q"), subjects.StatusUpAll) {
		t.Error("StatusUpAll does not match a heartbeat subject")
	}
	for _, s := range []string{subjects.SourceDeliver("q") + ".S.x", subjects.CommandReply("q", "t")} {
		if !server.SubjectMatchesFilter(s, subjects.SiteAll("q")) || server.SubjectMatchesFilter(s, subjects.Up("q")) {
			t.Errorf("%q must be inside ems.q.> and outside ems.q.up.>", s)
		}
	}
}

func FuzzParseUp(f *testing.F) {
	f.Add("ems.a.up.comsrv.1.T")
	f.Add("ems.a.up.inst.2.M")
	f.Fuzz(func(t *testing.T, s string) {
		u, ok := subjects.ParseUp(s)
		if !ok {
			return
		}
		var back string
		switch u.Kind {
		case subjects.KindChannel:
			back = subjects.ChannelUp(u.Site, u.ID, point.Type(u.Family[0]))
		case subjects.KindInstance:
			back = subjects.InstanceUp(u.Site, u.ID)
		case subjects.KindAlarm:
			back = subjects.AlarmUp(u.Site)
		case subjects.KindStatus:
			back = subjects.StatusUp(u.Site)
		}
		if back != s {
			t.Fatalf("ParseUp(%q) = %+v rebuilds as %q", s, u, back)
		}
	})
}
