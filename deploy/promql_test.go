package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// selector is one vector selector of a PromQL expression: a metric name and the
// label names it matches on.
type selector struct {
	metric string
	labels []string
}

var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
}

// aggregations may put their grouping before the parenthesis: sum by (a) (x).
var aggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}

// grouping keywords are followed by a parenthesised list of label names.
var groupingKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdent(c byte) bool      { return isIdentStart(c) || (c >= '0' && c <= '9') }

// selectors finds the vector selectors of a PromQL expression (as Grafana writes
// it, with $variables): identifiers outside strings, label matchers, ranges and
// grouping lists that are not followed by "(" (functions, aggregations) and are
// not keywords. It is a scanner, not a full parser: enough to name every metric a
// dashboard or rule reads, which is what the tests compare with live /metrics.
func selectors(expr string) ([]selector, error) {
	var out []selector
	i := 0
	skipString := func() error {
		q := expr[i]
		for i++; i < len(expr); i++ {
			if expr[i] == '\\' {
				i++
				continue
			}
			if expr[i] == q {
				i++
				return nil
			}
		}
		return fmt.Errorf("unterminated string in %q", expr)
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(); err != nil {
				return nil, err
			}
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{':
			// A selector without a name ({__name__=...}) is not used here.
			return nil, fmt.Errorf("label matchers without a metric name in %q", expr)
		case c == '$':
			for i++; i < len(expr) && isIdent(expr[i]); i++ {
			}
		case c >= '0' && c <= '9' || c == '.':
			for i++; i < len(expr) && (isIdent(expr[i]) || expr[i] == '.'); i++ {
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			j := i
			for j < len(expr) && expr[j] == ' ' {
				j++
			}
			switch {
			case groupingKeywords[word]:
				if j < len(expr) && expr[j] == '(' {
					end := strings.IndexByte(expr[j:], ')')
					if end < 0 {
						return nil, fmt.Errorf("unterminated %s list in %q", word, expr)
					}
					i = j + end + 1
				}
			case promqlKeywords[word], aggregations[word]:
			case j < len(expr) && expr[j] == '(':
				// a function or aggregation
			default:
				s := selector{metric: word}
				if j < len(expr) && expr[j] == '{' {
					end, labels, err := matchers(expr, j)
					if err != nil {
						return nil, err
					}
					s.labels, i = labels, end
				}
				out = append(out, s)
			}
		default:
			i++
		}
	}
	return out, nil
}

var matcherRe = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?`)

// matchers parses {a="x", b=~"y"} starting at expr[open] and returns the index
// after "}" and the label names.
func matchers(expr string, open int) (int, []string, error) {
	rest := expr[open+1:]
	var labels []string
	for {
		if t := strings.TrimLeft(rest, " "); strings.HasPrefix(t, "}") {
			return len(expr) - len(t) + 1, labels, nil
		}
		m := matcherRe.FindStringSubmatch(rest)
		if m == nil {
			return 0, nil, fmt.Errorf("bad label matchers in %q", expr)
		}
		labels = append(labels, m[1])
		rest = rest[len(m[0]):]
	}
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// templateQuery splits a Grafana variable query label_values(EXPR, LABEL).
func templateQuery(q string) (expr, label string, err error) {
	m := labelValuesRe.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("variable query %q is not label_values(selector, label)", q)
	}
	return m[1], m[2], nil
}

func TestSelectors(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job=~"voltage-.*"} == 0`: {"up:job"},
		`sum by (result) (rate(rulesrv_firings_total{site="$site"}[$__rate_interval]))`:                                {"rulesrv_firings_total:site"},
		`histogram_quantile(0.95, sum by (channel, le) (rate(comsrv_poll_duration_seconds_bucket{site="$site"}[5m])))`: {"comsrv_poll_duration_seconds_bucket:site"},
		`time() - hissrv_last_sample_timestamp_seconds > 300 and hissrv_last_sample_timestamp_seconds > 0`:             {"hissrv_last_sample_timestamp_seconds:", "hissrv_last_sample_timestamp_seconds:"},
		`process_resident_memory_bytes{job="voltage-edge", service="edge"} > 150e6`:                                    {"process_resident_memory_bytes:job,service"},
		`voltage_point{a="x}y", b!~"\"q"} unless on(point) voltage_point_quality offset 5m`:                            {"voltage_point:a,b", "voltage_point_quality:"},
		`voltage_point:avg_1h{channel="1"}`: {"voltage_point:avg_1h:channel"},
	} {
		sels, err := selectors(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		var got []string
		for _, s := range sels {
			got = append(got, s.metric+":"+strings.Join(s.labels, ","))
		}
		if !slices.Equal(got, want) {
			t.Errorf("selectors(%s) = %v, want %v", expr, got, want)
		}
	}
	for _, bad := range []string{`x{a="b"`, `x{a=b}`, `{__name__="x"}`, `rate(x[5m`, `x{a="b}`, `sum by (a`} {
		if _, err := selectors(bad); err == nil {
			t.Errorf("selectors(%s) accepted", bad)
		}
	}
	if e, l, err := templateQuery(`label_values(voltage_point{kind="channel"}, channel)`); err != nil || e != `voltage_point{kind="channel"}` || l != "channel" {
		t.Errorf("templateQuery = %q %q %v", e, l, err)
	}
}

func FuzzSelectors(f *testing.F) {
	f.Add(`sum by (a) (rate(x{b="c"}[5m])) > 0`)
	f.Add(`x{a=~"\"", b!="}"}`)
	f.Fuzz(func(t *testing.T, expr string) {
		sels, err := selectors(expr)
		if err != nil {
			return
		}
		for _, s := range sels {
			if s.metric == "" || !isIdentStart(s.metric[0]) {
				t.Fatalf("selector %+v from %q", s, expr)
			}
		}
	})
}
