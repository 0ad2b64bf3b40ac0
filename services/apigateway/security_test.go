package apigateway_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/voltageems/voltage/shared/keyspace"
)

// specOperation is an operation as the checked-in spec describes it.
type specOperation struct {
	method, path, role string
	id                 string
	secured            bool
}

func specOperations(t *testing.T) []specOperation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "openapi", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Role        string                `json:"x-voltage-role"`
			Security    []map[string][]string `json:"security"`
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ops []specOperation
	for p, methods := range doc.Paths {
		for m, o := range methods {
			ops = append(ops, specOperation{method: strings.ToUpper(m), path: p, role: o.Role, id: o.OperationID, secured: len(o.Security) > 0})
		}
	}
	return ops
}

// concrete fills path parameters with a harmless value.
func concrete(path string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.IndexByte(path[i:], '}')
		b.WriteString(path[:i])
		switch path[i+1 : i+j] {
		case "type":
			b.WriteString("T")
		default:
			b.WriteString("1")
		}
		path = path[i+j+1:]
	}
}

// TestEveryOperationChecksItsRole walks the whole API: every operation has a role;
// only login and refresh are public; without a token every other one answers 401,
// and with a token of the role just below its own, 403 — before its body is read.
func TestEveryOperationChecksItsRole(t *testing.T) {
	g := newGateway(t)
	tokenOf := map[string]string{
		"viewer":   g.user("v1", "viewer"),
		"operator": g.user("o1", "operator"),
		"engineer": g.user("e1", "engineer"),
	}
	below := map[string]string{"operator": "viewer", "engineer": "operator", "admin": "engineer"}
	ops := specOperations(t)
	if len(ops) < 40 {
		t.Fatalf("only %d operations in the spec", len(ops))
	}
	for _, o := range ops {
		switch o.role {
		case "public":
			if o.id != "login" && o.id != "refresh" {
				t.Errorf("%s %s is public", o.method, o.path)
			}
			continue
		case "viewer", "operator", "engineer", "admin":
		default:
			t.Errorf("%s %s has role %q", o.method, o.path, o.role)
			continue
		}
		if !o.secured {
			t.Errorf("%s %s: no security requirement in the spec", o.method, o.path)
		}
		p := concrete(o.path)
		if r := g.do(o.method, p, "", "{}"); r.status != 401 {
			t.Errorf("%s %s without token: %d %s", o.method, p, r.status, r.body)
		}
		if b, ok := below[o.role]; ok {
			if r := g.do(o.method, p, tokenOf[b], "{}"); r.status != 403 {
				t.Errorf("%s %s as %s (needs %s): %d %s", o.method, p, b, o.role, r.status, r.body)
			}
		}
	}
}

func TestForgedAndExpiredTokens(t *testing.T) {
	g := newGateway(t)
	ctx := t.Context()
	good := g.admin()
	g.expect(g.do("GET", "/site", good, nil), 200)

	var u struct{ Gen int64 }
	if err := json.Unmarshal([]byte(g.site.HGet(keyspace.GatewayUsers, "admin")), &u); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "admin", "role": "admin", "gen": u.Gen, "iss": "voltage-apigateway",
		"aud": []string{"voltage-api"}, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	realKey, _ := base64.StdEncoding.DecodeString(g.site.RDB.Get(ctx, keyspace.GatewaySigningKey).Val())

	// The same claims signed with the real key are accepted: the refusals below
	// are about the signature and algorithm only.
	ok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(realKey)
	g.expect(g.do("GET", "/site", ok, nil), 200)

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	wrongKey := make([]byte, 32)
	_, _ = rand.Read(wrongKey)
	forgedKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(wrongKey)
	otherAlg, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(realKey)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","role":"admin"}`)) + "." + parts[2]
	staleGen := jwt.MapClaims{}
	for k, v := range claims {
		staleGen[k] = v
	}
	staleGen["gen"] = u.Gen - 1
	oldGen, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, staleGen).SignedString(realKey)

	for name, tok := range map[string]string{
		"alg none": none, "wrong key": forgedKey, "HS512": otherAlg, "tampered claims": tampered,
		"old generation": oldGen, "garbage": "not.a.jwt", "empty": " ",
	} {
		r := g.expect(g.do("GET", "/site", tok, nil), 401)
		if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}

	// A token issued an hour ago has expired.
	g.offset.Store(int64(-time.Hour))
	old := g.admin()
	g.offset.Store(0)
	g.expect(g.do("GET", "/site", old, nil), 401)
}

func TestViewerCannotCommandOperatorCannotConfigure(t *testing.T) {
	g := newGateway(t)
	viewer := g.user("vic", "viewer")
	operator := g.user("otto", "operator")
	cmd := map[string]any{"channel": 1, "type": "A", "point": 1, "value": 5}
	g.expect(g.do("POST", "/commands", viewer, cmd), 403)
	g.expect(g.do("POST", "/instances/1/actions/start", viewer, map[string]any{"value": 1}), 403)
	if n := g.site.RDB.XLen(t.Context(), keyspace.ChannelCommands(1)).Val(); n != 0 {
		t.Fatalf("a refused command reached the stream (%d entries)", n)
	}
	if n := g.site.RDB.XLen(t.Context(), keyspace.InstanceActionStream).Val(); n != 0 {
		t.Fatalf("a refused action reached the stream (%d entries)", n)
	}
	g.expect(g.do("POST", "/config/reload", operator, "{}"), 403)
	g.expect(g.do("POST", "/config/validate", operator, nil), 403)
	g.expect(g.do("GET", "/config/file?path=site.yaml", operator, nil), 403)
	g.expect(g.do("GET", "/audit", operator, nil), 403)
	msgs := g.site.RDB.XRange(t.Context(), keyspace.Audit, "-", "+").Val()
	for _, m := range msgs {
		if a, _ := m.Values["action"].(string); strings.HasPrefix(a, "config") || a == "command_submitted" {
			t.Fatalf("a refused request left %v in the audit log", m.Values)
		}
	}
	// The operator's own command goes through.
	var res struct{ ID, Status string }
	g.expect(g.do("POST", "/commands", operator, cmd), 202).decode(t, &res)
	if res.ID == "" || res.Status != "pending" {
		t.Fatalf("command answered %+v", res)
	}
	assertAudit(t, g, "command_submitted", "otto")
}

func TestBadBodies(t *testing.T) {
	g := newGateway(t)
	op := g.user("opal", "operator")
	adm := g.admin()
	cases := []struct {
		name, path, body string
		status           int
	}{
		{"invalid JSON", "/commands", `{"channel":1,`, 400},
		{"not an object", "/commands", `[1,2]`, 422},
		{"wrong type", "/commands", `{"channel":"one","type":"A","point":1,"value":5}`, 422},
		{"value as string", "/commands", `{"channel":1,"type":"A","point":1,"value":"5"}`, 422},
		{"unknown field", "/commands", `{"channel":1,"type":"A","point":1,"value":5,"force":true}`, 422},
		{"missing field", "/commands", `{"channel":1,"type":"A","point":1}`, 422},
		{"type T", "/commands", `{"channel":1,"type":"T","point":1,"value":5}`, 422},
		{"wait too long", "/commands", `{"channel":1,"type":"A","point":1,"value":5,"wait_ms":99999999}`, 422},
		{"unknown channel", "/commands", `{"channel":9,"type":"A","point":1,"value":5}`, 404},
		{"unknown point", "/commands", `{"channel":1,"type":"A","point":9,"value":5}`, 404},
		{"oversized", "/commands", `{"channel":1,"type":"A","point":1,"value":5,"x":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	}
	for _, c := range cases {
		r := g.do("POST", c.path, op, c.body)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d: %.200s", c.name, r.status, c.status, r.body)
		}
	}
	if n := g.site.RDB.XLen(t.Context(), keyspace.ChannelCommands(1)).Val(); n != 0 {
		t.Fatalf("bad bodies queued %d commands", n)
	}
	g.expect(g.do("POST", "/users", adm, `{"name":"x","role":"viewer","password":12}`), 422)
	g.expect(g.do("POST", "/auth/login", "", `{"user":"admin"}`), 422)
	g.expect(g.do("GET", "/points?pattern=1:X:*", adm, nil), 422)
	g.expect(g.do("GET", "/points?pattern=1:T:*&limit=0", adm, nil), 422)
	g.expect(g.do("GET", "/points/1/Q/1", adm, nil), 422)
	g.expect(g.do("GET", "/points/x/T/1", adm, nil), 422)
}

func TestConfigPathTraversal(t *testing.T) {
	g := newGateway(t)
	eng := g.user("emma", "engineer")
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("secret: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(g.site.Dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	r := g.expect(g.do("GET", "/config/file?path=comsrv/channels.yaml", eng, nil), 200)
	if !strings.Contains(string(r.body), "protocol: virtual") {
		t.Fatalf("channels.yaml = %s", r.body)
	}
	for path, status := range map[string]int{
		"../site.yaml": 400, "comsrv/../../x.yaml": 400, "/etc/passwd": 400, "%2e%2e/site.yaml": 400,
		"..%2fsite.yaml": 400, "comsrv\\..\\..\\x.yaml": 400, "link.yaml": 404, "nothere.yaml": 404,
		"comsrv/1/telemetry.csv": 200, "comsrv": 400, ".": 400, "comsrv//channels.yaml": 400,
		"x.yaml%00.csv": 400,
	} {
		r := g.do("GET", "/config/file?path="+path, eng, nil)
		if r.status != status {
			t.Errorf("path %q: %d, want %d: %s", path, r.status, status, r.body)
		}
		if strings.Contains(string(r.body), "secret") {
			t.Errorf("path %q leaked the file outside the site folder", path)
		}
	}
	var v struct {
		Valid  bool
		Errors []string
	}
	g.expect(g.do("POST", "/config/validate", eng, nil), 200).decode(t, &v)
	if !v.Valid {
		t.Fatalf("site invalid: %v", v.Errors)
	}
	if err := os.WriteFile(filepath.Join(g.site.Dir, "comsrv", "channels.yaml"), []byte("channels:\n  - {id: 1, name: dev, protocol: virtual, bogus: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.expect(g.do("POST", "/config/validate", eng, nil), 200).decode(t, &v)
	if v.Valid || len(v.Errors) == 0 || !strings.Contains(v.Errors[0], "channels.yaml:2") {
		t.Fatalf("validate = %+v", v)
	}
	assertAudit(t, g, "config_validated", "emma")
}
