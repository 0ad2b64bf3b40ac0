package apigateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/voltageems/voltage/services/alarmsrv"
	"github.com/voltageems/voltage/services/apigateway"
	"github.com/voltageems/voltage/services/comsrv"
	"github.com/voltageems/voltage/services/hissrv"
	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/services/rulesrv"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/testharness"
	"github.com/voltageems/voltage/tools/sitetest"
)

// forwardedOps are the operations the gateway forwards to an internal service.
// TestForwardedAnswersMatchSchemas calls every one of them.
var forwardedOps = []string{
	"listAlarms", "alarmHistory", "getAlarm", "ackAlarm", "shelveAlarm", "unshelveAlarm",
	"listAlarmRules", "getAlarmRule", "createAlarmRule", "putAlarmRule", "deleteAlarmRule",
	"listRules", "getRule", "createRule", "putRule", "deleteRule", "enableRule", "disableRule",
	"dryRunRule", "dryRunNewRule", "ruleExecutions", "ruleEvents",
	"historyRange", "historyLatest",
	"listProducts", "getProduct", "listInstances", "getInstance", "listCalculations", "getRouting",
}

// schemaSite is modelSite with an alarm rule, an automation rule and a
// calculation, so every forwarded answer has content: telemetry 1 of channel 1
// (pv1.active_power) above 100 raises the alarm and fires the rule.
var schemaSite = sitetest.Merge(modelSite, sitetest.Files{
	"alarmsrv/alarms.yaml": "alarms:\n  - {id: hot, kind: limit, channel: 1, type: T, point: 1, limits: {h: {value: 100, severity: major}}}\n",
	"modsrv/calculations.yaml": "calculations:\n  - name: load\n    instance: pv1\n    measurement: load_factor\n" +
		"    expression: pv1.active_power / 2\n",
	"rulesrv/rules/peak.yaml": "id: peak\nname: Peak\ncondition: pv1.active_power > 100\nactions:\n" +
		"  - event: {name: peak, message: power high}\n  - command: {channel: 1, type: A, point: 1, value: 30}\n    wait: false\n",
})

// opSchemas are the documented 2xx answers of the served spec, compiled.
type opSchemas struct {
	status map[string]int                // operation id → documented 2xx status
	route  map[string][2]string          // operation id → method, path template
	schema map[string]*jsonschema.Schema // operation id → schema of its JSON answer
}

// compileSpec compiles the JSON answer schema of every operation of spec (an
// OpenAPI 3.1 document, whose schemas are JSON Schema 2020-12).
func compileSpec(t *testing.T, spec []byte) opSchemas {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatalf("served spec: %v", err)
	}
	ops := map[string]any{}
	out := opSchemas{status: map[string]int{}, route: map[string][2]string{}, schema: map[string]*jsonschema.Schema{}}
	for path, methods := range doc.Paths {
		for method, raw := range methods {
			var o struct {
				OperationID string `json:"operationId"`
				Responses   map[string]struct {
					Content map[string]struct {
						Schema any `json:"schema"`
					} `json:"content"`
				} `json:"responses"`
			}
			if err := json.Unmarshal(raw, &o); err != nil || o.OperationID == "" {
				continue
			}
			out.route[o.OperationID] = [2]string{strings.ToUpper(method), path}
			for code, r := range o.Responses {
				n, err := strconv.Atoi(code)
				if err != nil || n < 200 || n > 299 {
					continue
				}
				out.status[o.OperationID] = n
				if c, ok := r.Content["application/json"]; ok {
					ops[o.OperationID] = c.Schema
				}
			}
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, map[string]any{
		"components": map[string]any{"schemas": doc.Components.Schemas}, "ops": ops})))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("spec.json", res); err != nil {
		t.Fatal(err)
	}
	for id := range ops {
		s, err := c.Compile("spec.json#/ops/" + id)
		if err != nil {
			t.Fatalf("compile the answer schema of %s: %v", id, err)
		}
		out.schema[id] = s
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validate checks body against the answer schema of op.
func (o opSchemas) validate(op string, body []byte) error {
	s := o.schema[op]
	if s == nil {
		return fmt.Errorf("%s documents no JSON answer", op)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s answered something that is not JSON: %v", op, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("%s: the answer does not match the spec: %v\nanswer: %s", op, err, body)
	}
	return nil
}

// TestForwardedAnswersMatchSchemas runs comsrv, modsrv, alarmsrv, hissrv and
// rulesrv in this process behind the gateway, calls every forwarded operation and
// validates each answer against the operation's schema in the served
// /openapi.json. The schemas forbid unknown properties and list the required
// ones, so a field a service adds or renames without the spec fails here.
func TestForwardedAnswersMatchSchemas(t *testing.T) {
	site := sitetest.New(t, schemaSite)
	com := sitetest.Run(t, "comsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return comsrv.Run(ctx, comsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), ConsumerName: "comsrv-test", Bound: bound})
	})
	mod := sitetest.Run(t, "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(t), ConsumerName: "modsrv-test", Bound: bound})
	})
	alarms := sitetest.Run(t, "alarmsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return alarmsrv.Run(ctx, alarmsrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t), Bound: bound})
	})
	history := sitetest.Run(t, "hissrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return hissrv.Run(ctx, hissrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t),
			DataDir: t.TempDir(), Bound: bound})
	})
	rules := sitetest.Run(t, "rulesrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return rulesrv.Run(ctx, rulesrv.Config{Site: site.Config, ConfigDir: site.Dir, HTTPAddr: "127.0.0.1:0", Log: sitetest.Logger(t), Bound: bound})
	})
	g := startGateway(t, site, func(c *apigatewayConfig) {
		c.Services["comsrv"], c.Services["modsrv"], c.Services["alarmsrv"] = com.URL, mod.URL, alarms.URL
		c.Services["hissrv"], c.Services["rulesrv"] = history.URL, rules.URL
	})
	spec := compileSpec(t, g.expect(g.do("GET", "/openapi.json", "", nil), 200).body)
	eng := g.user("enzo", "engineer")

	checked := map[string]bool{}
	// call sends op to path and validates its answer (documented status, schema).
	call := func(op, path string, body any) []byte {
		t.Helper()
		route, ok := spec.route[op]
		if !ok {
			t.Fatalf("the served spec has no operation %s", op)
		}
		r := g.expect(g.do(route[0], path, eng, body), spec.status[op])
		if err := spec.validate(op, r.body); err != nil {
			t.Fatal(err)
		}
		checked[op] = true
		return r.body
	}

	// Telemetry 1 = 150: pv1.active_power above 100 raises hot and fires peak.
	site.WriteChannel(1, point.Telemetry, time.Now().UnixMilli(), point.Sample{ID: 1, Value: 150}, point.Sample{ID: 2, Value: 42.5})
	var key string
	testharness.WaitFor(t, 20*time.Second, "alarm hot raised", func() bool {
		key = firstAlarmKey(g.do("GET", "/alarms", eng, nil).body)
		return key != ""
	})
	testharness.WaitFor(t, 20*time.Second, "rule peak fired and its actions recorded", func() bool {
		var ex struct {
			Events []struct{ Kind string } `json:"events"`
		}
		_ = json.Unmarshal(g.do("GET", "/rules/peak/executions", eng, nil).body, &ex)
		kinds := map[string]bool{}
		for _, e := range ex.Events {
			kinds[e.Kind] = true
		}
		return kinds["event"] && kinds["action"]
	})
	testharness.WaitFor(t, 20*time.Second, "calculation load evaluated", func() bool {
		return strings.Contains(string(g.do("GET", "/calculations", eng, nil).body), `"evaluations":1`)
	})
	start := url.QueryEscape("now-1h")
	testharness.WaitFor(t, 20*time.Second, "history of comsrv:1:T:2 stored", func() bool {
		return strings.Contains(string(g.do("GET", "/history/range?point=comsrv:1:T:2&start="+start, eng, nil).body), "42.5")
	})

	// Instances (modsrv).
	call("listProducts", "/products", nil)
	call("getProduct", "/products/pv_inverter", nil)
	call("listInstances", "/instances", nil)
	call("getInstance", "/instances/pv1", nil)
	call("listCalculations", "/calculations", nil)
	call("getRouting", "/routing", nil)

	// History (hissrv): raw samples and buckets.
	call("historyRange", "/history/range?point=comsrv:1:T:2&point=comsrv:1:T:1&start="+start, nil)
	call("historyRange", "/history/range?point=comsrv:1:T:2&start="+start+"&step=1m&agg=max", nil)
	call("historyLatest", "/history/latest?point=comsrv:1:T:2", nil)

	// Alarms (alarmsrv).
	k := url.PathEscape(key)
	call("listAlarms", "/alarms", nil)
	call("getAlarm", "/alarms/"+k, nil)
	call("ackAlarm", "/alarms/"+k+"/ack", map[string]string{"comment": "seen"})
	call("shelveAlarm", "/alarms/"+k+"/shelve", map[string]string{"duration": "30m", "comment": "maintenance"})
	call("unshelveAlarm", "/alarms/"+k+"/unshelve", map[string]string{})
	call("alarmHistory", "/alarms/history", nil)
	cold := map[string]any{"id": "cold", "kind": "limit", "channel": 1, "type": "T", "point": 2,
		"limits": map[string]any{"h": map[string]any{"value": 1000, "severity": "minor"}}, "on_delay": "5s"}
	call("createAlarmRule", "/alarm-rules", cold)
	cold["message"] = "{name}: {value}"
	call("putAlarmRule", "/alarm-rules/cold", cold)
	call("getAlarmRule", "/alarm-rules/cold", nil)
	call("listAlarmRules", "/alarm-rules", nil)
	call("deleteAlarmRule", "/alarm-rules/cold", nil)

	// Rules (rulesrv).
	spare := map[string]any{"id": "spare", "priority": 2, "condition": "pv1.active_power > 1000", "for": "10s",
		"actions": []any{map[string]any{"action": map[string]any{"instance": "pv1", "name": "power_limit", "value": 50}}}}
	call("createRule", "/rules", spare)
	spare["description"] = "backup limit"
	call("putRule", "/rules/spare", spare)
	call("disableRule", "/rules/spare/disable", nil)
	call("enableRule", "/rules/spare/enable", nil)
	call("dryRunRule", "/rules/peak/dry-run", nil)
	call("dryRunNewRule", "/rules-dry-run", map[string]any{"id": "probe", "condition": "pv1.active_power > 10",
		"actions": []any{map[string]any{"event": map[string]any{"name": "probe"}}}})
	call("getRule", "/rules/peak", nil)
	call("listRules", "/rules", nil)
	call("ruleExecutions", "/rules/peak/executions", nil)
	call("ruleEvents", "/rule-events", nil)
	call("deleteRule", "/rules/spare", nil)

	for _, op := range forwardedOps {
		if !checked[op] {
			t.Errorf("%s was not checked against its schema", op)
		}
	}
}

// TestSchemaCheckCatchesDrift proves the check above can fail: an answer with a
// field the spec does not know, or with a required field renamed, or with a
// value of the wrong type, does not validate.
func TestSchemaCheckCatchesDrift(t *testing.T) {
	g := newGateway(t)
	spec := compileSpec(t, g.expect(g.do("GET", "/openapi.json", "", nil), 200).body)
	alarm := map[string]any{"key": "hot:h", "id": "hot:h@1", "rule": "hot", "name": "hot", "kind": "limit",
		"severity": "major", "source": "1:T:1", "message": "m", "value": 150.0, "active": true, "acked": false,
		"shelved": false, "escalated": false, "flapping": false, "occurrence": 1, "raised_at": 1, "updated_at": 1}
	if err := spec.validate("getAlarm", mustJSON(t, alarm)); err != nil {
		t.Fatalf("a valid alarm: %v", err)
	}
	added := map[string]any{"surprise": 1}
	for k, v := range alarm {
		added[k] = v
	}
	renamed := map[string]any{"raised_ms": 1}
	for k, v := range alarm {
		if k != "raised_at" {
			renamed[k] = v
		}
	}
	retyped := map[string]any{}
	for k, v := range alarm {
		retyped[k] = v
	}
	retyped["value"] = "150"
	for name, body := range map[string]any{"added": added, "renamed": renamed, "retyped": retyped,
		"added in a list": []any{added}} {
		op := "getAlarm"
		if _, ok := body.([]any); ok {
			op = "listAlarms"
		}
		if err := spec.validate(op, mustJSON(t, body)); err == nil {
			t.Errorf("%s field: the answer validated", name)
		}
	}
	// Nested types are checked too: an unknown field in a rule's definition.
	event := map[string]any{"name": "e"}
	view := map[string]any{"id": "r", "priority": 0, "file": "r.yaml",
		"status":     map[string]any{"enabled": true, "active": false, "pending": false},
		"definition": map[string]any{"id": "r", "actions": []any{map[string]any{"event": event}}}}
	if err := spec.validate("getRule", mustJSON(t, view)); err != nil {
		t.Fatalf("a valid rule: %v", err)
	}
	event["extra"] = 1
	if err := spec.validate("getRule", mustJSON(t, view)); err == nil {
		t.Error("an unknown field of a nested type validated")
	}
}

// TestNoUntypedAnswers walks the spec: every answer and request body of every
// operation has a schema with a type or a reference, so the generated clients
// get types, not raw bytes.
func TestNoUntypedAnswers(t *testing.T) {
	v31, _, err := apigateway.Spec()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody *struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(v31, &doc); err != nil {
		t.Fatal(err)
	}
	typed := func(s map[string]any) bool { return s["type"] != nil || s["$ref"] != nil }
	var untyped []string
	for path, methods := range doc.Paths {
		for method, o := range methods {
			if o.RequestBody != nil {
				for ct, c := range o.RequestBody.Content {
					if !typed(c.Schema) {
						untyped = append(untyped, fmt.Sprintf("%s %s request %s", method, path, ct))
					}
				}
			}
			for code, r := range o.Responses {
				for ct, c := range r.Content {
					if !typed(c.Schema) {
						untyped = append(untyped, fmt.Sprintf("%s %s %s %s", method, path, code, ct))
					}
				}
			}
		}
	}
	slices.Sort(untyped)
	if len(untyped) > 0 {
		t.Errorf("untyped bodies in the spec:\n%s", strings.Join(untyped, "\n"))
	}
}
