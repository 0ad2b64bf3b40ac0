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

// Sinks opens the five sinks of a running stack. Close the returned func at the end.
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
		ModelSink(rdb),
		HistorySink{Addr: s.Services["hissrv"], Since: since},
		&CloudSink{HTTP: s.HubHTTP, Site: s.SiteID, Password: s.AdminPassword, Since: since},
		mq,
	}
	return sinks, func() { mq.Close(); rdb.Close() }, nil
}

// sinkOrder is the order of the sinks' columns.
var sinkOrder = []string{"redis", "model", "history", "cloud", "mqtt"}

// WriteTable prints the results in two tables. Telemetry: per sink the distinct
// values held (+duplicates), what DESIGN §11 counts as lost (values the stream
// held that history or the cloud do not, acknowledged writes Redis lost, lost
// commands and alarm events) and each sink's recovery. Commands and alarms: the
// counted commands from the API to the device, and the counted alarm from the
// signal to the cloud.
func WriteTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tproduced\t"+strings.Join(sinkOrder, "\t")+"\tlost (§11)\tnot read at source\trecovery "+strings.Join(sinkOrder, "/")+"\t")
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\tFAILED: %v\t\n", r.Scenario, r.Err)
			continue
		}
		cells := []string{r.Scenario, fmt.Sprint(r.Produced)}
		var rec []string
		for _, n := range sinkOrder {
			s := r.Sink(n)
			switch {
			case s.DupVsRedis > 0:
				cells = append(cells, fmt.Sprintf("%d (+%d dup, %d delivered twice)", s.Got, s.Duplicates, s.DupVsRedis))
			case s.Duplicates > 0:
				cells = append(cells, fmt.Sprintf("%d (+%d dup)", s.Got, s.Duplicates))
			default:
				cells = append(cells, fmt.Sprint(s.Got))
			}
			rec = append(rec, seconds(s.Recovery))
		}
		cells = append(cells, fmt.Sprint(r.Lost()), fmt.Sprint(r.Sink("redis").Missing), strings.Join(rec, " / "))
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tcommands sent\taccepted\trefused\tok\tfailed\texpired\tunfinished\tat device\ttwice\tran unanswered\t"+
		"signal rises\talarms raised\tnot evaluated\tevents at cloud\tlost at cloud\talarm recovery\t")
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		c, a := r.Commands, r.Alarms
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%s\t\n", r.Scenario,
			c.Sent, c.Accepted, c.Refused, c.OK, c.Failed, c.Expired, c.Unfinished, c.AtDevice, c.Twice, c.RanUnanswered,
			a.Rises, a.Raised, a.NotEvaluated, a.AtCloud, a.Raised+a.Cleared, a.LostAtCloud, seconds(a.Recovery))
	}
	tw.Flush()
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// Lost is what DESIGN §11 promises to keep but was lost: values voltage:changes
// held that history or the cloud do not, acknowledged writes Redis lost,
// accepted commands without an outcome (or reported ok and never at the
// device), and alarm events that did not reach the cloud.
func (r Result) Lost() int {
	n := r.AckedLost + r.Commands.Lost() + r.Alarms.LostAtCloud
	for _, name := range Durable {
		n += r.Sink(name).LostVsRedis
	}
	return n
}
