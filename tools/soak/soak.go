// Package soak runs the whole local stack (tools/chaos: redis-server, mosquitto,
// the cloud hub, voltsim and the edge) for a long time under a steady load of
// changing points from simulated Modbus devices, samples every process's memory,
// descriptors, threads and goroutines, Redis's memory and the consumer groups'
// lag on voltage:changes, and flags the series that grow after a warm-up.
// docs/soak.md describes it; tools/cmd/voltsoak is its command.
package soak

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/tools/chaos"
)

// Options configure a soak run.
type Options struct {
	Root     string // the repository (folder of go.work)
	StateDir string // the stack's binaries and data
	Logs     io.Writer
	// Progress receives a line every ProgressEvery (nil: none).
	Progress      io.Writer
	ProgressEvery time.Duration
	Duration      time.Duration // how long to sample
	Interval      time.Duration // between rounds of samples
	Rate          int           // target point updates a second
	// ChangesMaxLen caps voltage:changes (entries) in the site copy; 0 keeps the
	// demo site's 1,000,000.
	ChangesMaxLen int64
	CSV           io.Writer // every sample (nil: none)
	// Layout is the edge's layout (chaos.LayoutAppliance when empty; with
	// chaos.LayoutSplit every edge service is its own process, sampled alone).
	Layout chaos.Layout
}

// ProcessNames are the stack's processes the soak looks for: those of the
// one-process edge and those of the layout with a process per service. Names the
// running stack does not have are skipped.
var ProcessNames = append([]string{"redis", "mosquitto", "cloud", "voltsim", "edge"}, chaos.EdgeServices...)

// Result is what a run measured.
type Result struct {
	Load          Load
	Processes     []string
	Rounds        int
	Sampled       time.Duration // from the first round to the last
	Warmup        time.Duration
	Rows          []Row
	Achieved      float64 // soak channels' point updates a second over the run
	AchievedAll   float64 // every channel's
	EntriesPerSec float64 // voltage:changes entries a second
	Problems      []string
	ScrapeErrors  map[string]string
}

// Row is one series summarised.
type Row struct {
	Process, Metric         string
	First, Last, Min, Max   float64
	SlopePerHour            float64
	Trend                   Trend
	HasRule                 bool
	Rule                    Rule
	firstOrder, secondOrder int
}

// Flagged says the run found something: a series grew, or a process went away.
func (r *Result) Flagged() bool {
	if len(r.Problems) > 0 {
		return true
	}
	for _, row := range r.Rows {
		if row.Trend.Flagged {
			return true
		}
	}
	return false
}

// RateShort says the load reached less than 90 % of its target.
func (r *Result) RateShort() bool { return r.Achieved < 0.9*float64(r.Load.Rate) }

// Run starts the stack with the soak load, samples it for o.Duration and judges
// every series. The stack is stopped before it returns.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Duration < o.Interval {
		return nil, fmt.Errorf("duration %s is shorter than the sampling interval %s", o.Duration, o.Interval)
	}
	load, err := NewLoad(o.Rate)
	if err != nil {
		return nil, err
	}
	st, err := chaos.Start(ctx, chaos.Options{Root: o.Root, StateDir: o.StateDir, Out: o.Logs, PollMS: 1000, Layout: o.Layout,
		Prepare: func(dir string) error { return load.Prepare(dir, o.ChangesMaxLen) }})
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	defer st.Stop()

	rdb := redis.NewClient(&redis.Options{Addr: st.RedisAddr})
	defer rdb.Close()
	smp, err := newSampler(st, rdb, load)
	if err != nil {
		return nil, err
	}
	if err := waitLoad(ctx, smp.ComsrvURL, load, 90*time.Second); err != nil {
		return nil, err
	}

	res := &Result{Load: load, Warmup: time.Duration(Warmup(o.Duration.Seconds()) * float64(time.Second))}
	for _, t := range smp.Targets {
		res.Processes = append(res.Processes, t.Name)
	}
	var cw *csv.Writer
	if o.CSV != nil {
		cw = csv.NewWriter(o.CSV)
		_ = cw.Write([]string{"time", "elapsed_s", "process", "metric", "value"})
	}
	series := map[[2]string][]Point{}
	var firstSoak, firstAll, firstAdded float64
	var firstAt time.Time
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	lastProgress := time.Now()
	for {
		samples := smp.Round(ctx)
		res.Rounds++
		for _, s := range samples {
			k := [2]string{s.Process, s.Metric}
			series[k] = append(series[k], Point{T: s.Elapsed, V: s.Value})
			if cw != nil {
				_ = cw.Write([]string{s.At.UTC().Format(time.RFC3339), strconv.FormatFloat(s.Elapsed, 'f', 1, 64),
					s.Process, s.Metric, strconv.FormatFloat(s.Value, 'f', -1, 64)})
			}
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return nil, fmt.Errorf("write samples: %w", err)
			}
		}
		soak, all, at, ok := smp.PointsWritten()
		if ok && firstAt.IsZero() {
			firstSoak, firstAll, firstAt = soak, all, at
			firstAdded = float64(smp.added)
		} else if ok && at.After(firstAt) {
			dt := at.Sub(firstAt).Seconds()
			res.Achieved, res.AchievedAll = (soak-firstSoak)/dt, (all-firstAll)/dt
			res.EntriesPerSec = (float64(smp.added) - firstAdded) / dt
			res.Sampled = at.Sub(firstAt)
		}
		if o.Progress != nil && (time.Since(lastProgress) >= o.ProgressEvery-o.Interval/2 || res.Rounds == 1) {
			lastProgress = time.Now()
			fmt.Fprintln(o.Progress, progressLine(samples))
		}
		if len(samples) > 0 && samples[0].Elapsed >= o.Duration.Seconds() {
			break
		}
		select {
		case <-ctx.Done():
			res.Problems = append(res.Problems, fmt.Sprintf("stopped early after %s: %v", res.Sampled.Round(time.Second), ctx.Err()))
			res.finish(series, smp)
			return res, nil
		case <-tick.C:
		}
	}
	res.finish(series, smp)
	return res, nil
}

func (r *Result) finish(series map[[2]string][]Point, smp *Sampler) {
	r.Problems = append(r.Problems, smp.Problems...)
	r.ScrapeErrors = smp.ScrapeErrors()
	procOrder := map[string]int{}
	for i, p := range r.Processes {
		procOrder[p] = i
	}
	procOrder[ProcStream] = len(r.Processes)
	procOrder[ProcLoad] = len(r.Processes) + 1
	metricOrder := map[string]int{MetricRSS: 0, MetricHeapInuse: 1, MetricGoroutines: 2, MetricFDs: 3, MetricThreads: 4,
		MetricCPU: 5, MetricUsedMemory: 6, MetricStreamLen: 7, MetricEntriesPS: 8, MetricPointsPS: 10, MetricAllPS: 11,
		"history_points_per_s": 12, "cloud_points_per_s": 13, "mqtt_points_per_s": 14}
	for k, pts := range series {
		row := Row{Process: k[0], Metric: k[1], First: pts[0].V, Last: pts[len(pts)-1].V, Min: math.Inf(1), Max: math.Inf(-1),
			firstOrder: procOrder[k[0]], secondOrder: 9}
		if o, ok := metricOrder[k[1]]; ok {
			row.secondOrder = o
		}
		for _, p := range pts {
			row.Min, row.Max = math.Min(row.Min, p.V), math.Max(row.Max, p.V)
		}
		row.Rule, row.HasRule = RuleFor(k[1])
		rule := row.Rule
		if !row.HasRule {
			rule = Rule{Abs: math.Inf(1)}
		}
		row.Trend = Judge(pts, r.Warmup.Seconds(), rule)
		row.SlopePerHour = row.Trend.SlopePerSec * 3600
		r.Rows = append(r.Rows, row)
	}
	sortRows(r.Rows)
}

func newSampler(st *chaos.Stack, rdb *redis.Client, load Load) (*Sampler, error) {
	comsrv, ok := st.Services["comsrv"]
	if !ok {
		return nil, fmt.Errorf("the edge reports no comsrv among its services (%v)", keys(st.Services))
	}
	s := &Sampler{Redis: rdb, ComsrvURL: metricsURL(comsrv), LoadLabels: load.Labels()}
	if a := st.Services["hissrv"]; a != "" {
		s.Sinks = append(s.Sinks, SinkCounter{Metric: "history_points_per_s", URL: metricsURL(a), Counter: "hissrv_samples_written_total"})
	}
	if a := st.Services["netsrv"]; a != "" {
		s.Sinks = append(s.Sinks, SinkCounter{Metric: "mqtt_points_per_s", URL: metricsURL(a), Counter: "netsrv_link_sent_points_total"})
	}
	s.Sinks = append(s.Sinks, SinkCounter{Metric: "cloud_points_per_s", URL: metricsURL(st.HubHTTP), Counter: "voltage_cloud_history_samples_total"})
	for _, name := range ProcessNames {
		p := st.Proc(name)
		if p == nil {
			continue
		}
		t := Target{Name: name, PID: p.PID}
		switch {
		case name == "edge":
			t.MetricsURL = metricsURL(st.EdgeHTTP)
		case name == "cloud":
			t.MetricsURL = metricsURL(st.HubHTTP)
		case st.Services[name] != "":
			t.MetricsURL = metricsURL(st.Services[name])
		}
		s.Targets = append(s.Targets, t)
	}
	for _, want := range []string{"redis", "voltsim", "edge", "cloud"} {
		if st.Proc(want) == nil && (want != "edge" || st.Proc("comsrv") == nil) {
			return nil, fmt.Errorf("the stack has no %q process to sample", want)
		}
	}
	return s, nil
}

func metricsURL(addr string) string {
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/") + "/metrics"
}

// waitLoad waits until comsrv has written points of every soak channel.
func waitLoad(ctx context.Context, url string, load Load, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	labels := load.Labels()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		seen := 0
		resp, err := client.Get(url)
		if err == nil {
			m, perr := parseMetrics(resp.Body)
			resp.Body.Close()
			err = perr
			for series, v := range m {
				if label, ok := channelLabel(series, "comsrv_points_written_total"); ok && labels[label] && v > 0 {
					seen++
				}
			}
		}
		if err == nil && seen == len(labels) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%d of %d soak channels written", seen, len(labels))
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("the soak load did not flow within %s: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
