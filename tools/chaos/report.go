package chaos

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/voltageems/voltage/shared/redisx"
)

// Sinks opens the four sinks of a running stack. Close the returned func at the end.
func (s *Stack) Sinks(ctx context.Context, since time.Time) ([]Sink, func(), error) {
	rdb, err := redisx.Connect(ctx, "redis://"+s.RedisAddr+"/0")
	if err != nil {
		return nil, nil, err
	}
	mq, err := StartMQTTSink("tcp://" + s.MQTTAddr)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	sinks := []Sink{
		StreamSink{RDB: rdb},
		HistorySink{Addr: s.Services["hissrv"], Since: since},
		&CloudSink{HTTP: s.HubHTTP, Site: s.SiteID, Password: s.AdminPassword, Since: since},
		mq,
	}
	return sinks, func() { mq.Close(); rdb.Close() }, nil
}

// WriteTable prints the results: per sink the distinct values held (+duplicates),
// what DESIGN §11 counts as lost (values the stream held that history or the
// cloud do not, plus acknowledged writes Redis lost) and the slowest recovery.
func WriteTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tproduced\tredis\thistory\tcloud\tmqtt\tlost (§11)\tnot read at source\trecovery redis/history/cloud/mqtt\t")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\tFAILED: %v\t\t\t\t\t\t\t\t\n", r.Scenario, r.Err)
			continue
		}
		cell := func(name string) string {
			s := r.Sink(name)
			switch {
			case s.DupVsRedis > 0:
				return fmt.Sprintf("%d (+%d dup, %d delivered twice)", s.Got, s.Duplicates, s.DupVsRedis)
			case s.Duplicates > 0:
				return fmt.Sprintf("%d (+%d dup)", s.Got, s.Duplicates)
			}
			return fmt.Sprint(s.Got)
		}
		var rec []string
		for _, n := range []string{"redis", "history", "cloud", "mqtt"} {
			if d := r.Sink(n).Recovery; d < 0 {
				rec = append(rec, "never")
			} else {
				rec = append(rec, fmt.Sprintf("%.1fs", d.Seconds()))
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", r.Scenario, r.Produced,
			cell("redis"), cell("history"), cell("cloud"), cell("mqtt"), r.Lost(), r.Sink("redis").Missing, strings.Join(rec, " / "))
	}
	tw.Flush()
}

// Lost is what DESIGN §11 promises to keep but was lost: values voltage:changes
// held that history or the cloud do not, and acknowledged writes Redis lost.
func (r Result) Lost() int {
	n := r.AckedLost
	for _, name := range Durable {
		n += r.Sink(name).LostVsRedis
	}
	return n
}
