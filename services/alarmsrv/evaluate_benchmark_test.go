package alarmsrv

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/statestore"
)

// BenchmarkEvaluateBatch is the engine's CPU cost without Redis: one change
// message of 100 values against 10,000 limit rules, every value crossing its
// limit (100 transitions and their event encoding per op).
func BenchmarkEvaluateBatch(b *testing.B) {
	var rules strings.Builder
	rules.WriteString("alarms:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&rules, "  - {id: r%d, kind: limit, channel: 1, type: T, point: %d, limits: {h: {value: 50}}, deadband: 1}\n", i, i)
	}
	rs, err := ParseRules("alarms.yaml", []byte(rules.String()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	// 10,000 rules: the same rule on 10,000 fields (no channel table needed).
	base := rs.Rules[0]
	rs.Rules = nil
	for i := 1; i <= 10_000; i++ {
		r := *base
		r.ID, r.Field = fmt.Sprintf("r%d", i), fmt.Sprint(i)
		rs.Rules = append(rs.Rules, &r)
	}
	now := time.Unix(1_700_000_000, 0)
	ev := newEvaluator(rs, nil, func() time.Time { return now })
	msgs := make([][]byte, 200)
	for m := range msgs {
		var sb strings.Builder
		sb.WriteString(`{"ts":1700000000000,"v":{`)
		v := 40
		if (m/100)%2 == 0 {
			v = 60
		}
		for j := range 100 {
			if j > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `"%d":%d`, (m%100)*100+j+1, v)
		}
		sb.WriteString("}}")
		msgs[m] = []byte(sb.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m, err := statestore.DecodeMessage(msgs[i%len(msgs)])
		if err != nil {
			b.Fatal(err)
		}
		ev.message("comsrv:1:T", &m, now)
		for _, o := range ev.take() {
			_ = o.event.fields()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/change")
}
