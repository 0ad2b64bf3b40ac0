package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// Sample is one measured value.
type Sample struct {
	At      time.Time
	Elapsed float64 // seconds since the first round
	Process string  // a process of the stack, or "voltage:changes" or "load"
	Metric  string
	Value   float64
}

// Target is one process of the stack to measure.
type Target struct {
	Name string
	PID  func() int
	// MetricsURL is its Prometheus endpoint when it serves the Go collector's
	// series (go_goroutines, go_memstats_heap_inuse_bytes); "" when it has none.
	MetricsURL string
}

// Metric names, one unit each: bytes, a count, or a rate.
const (
	MetricRSS        = "rss_bytes"
	MetricFDs        = "fds"
	MetricThreads    = "threads"
	MetricCPU        = "cpu_percent"
	MetricGoroutines = "goroutines"
	MetricHeapInuse  = "heap_inuse_bytes"
	MetricUsedMemory = "used_memory_bytes"
	MetricStreamLen  = "length"
	MetricLagPrefix  = "lag:" // + consumer group
	MetricEntriesPS  = "entries_per_s"
	MetricPointsPS   = "points_per_s"
	MetricAllPS      = "all_points_per_s"
)

// Pseudo-processes of the series that belong to no process.
const (
	ProcStream = "voltage:changes"
	ProcLoad   = "load"
)

// Rules are the growth each judged metric may show (docs/soak.md); metrics
// without a rule (CPU, rates) are recorded, not judged.
var Rules = map[string]Rule{
	MetricRSS:        {Rel: 0.10, Abs: 10 << 20},
	MetricHeapInuse:  {Rel: 0.10, Abs: 10 << 20},
	MetricUsedMemory: {Rel: 0.10, Abs: 10 << 20},
	MetricGoroutines: {Rel: 0.10, Abs: 20},
	MetricFDs:        {Rel: 0.10, Abs: 10},
	MetricThreads:    {Rel: 0.10, Abs: 10},
	MetricStreamLen:  {Rel: 0.10, Abs: 1000},
	MetricLagPrefix:  {Abs: 1000},
}

// RuleFor is the rule of a metric and whether it is judged at all.
func RuleFor(metric string) (Rule, bool) {
	if strings.HasPrefix(metric, MetricLagPrefix) {
		metric = MetricLagPrefix
	}
	r, ok := Rules[metric]
	return r, ok
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// Sampler takes one round of samples of a running stack.
type Sampler struct {
	Targets    []Target
	Redis      *redis.Client
	ComsrvURL  string          // comsrv's /metrics, for the achieved rate
	LoadLabels map[string]bool // comsrv's channel labels of the soak channels
	// Sinks are the counters of what the consumers of the load passed on; each
	// becomes a rate of the "load" row.
	Sinks []SinkCounter

	client    *http.Client
	first     time.Time
	cpu       map[string]cpuMark
	written   *writtenMark
	added     int64
	addedAt   time.Time
	pids      map[string]int
	Problems  []string // processes gone or restarted: each is a finding
	scrapeErr map[string]string
}

// SinkCounter is a Prometheus counter (summed over its labels) of points a
// consumer passed on: hissrv's samples written, netsrv's points sent, the hub's
// history samples.
type SinkCounter struct {
	Metric  string // the "load" row's metric, e.g. history_points_per_s
	URL     string // the /metrics to read
	Counter string // the Prometheus counter's name

	last   float64
	lastAt time.Time
}

type cpuMark struct {
	ticks float64
	at    time.Time
}

type writtenMark struct {
	soak, all float64
	at        time.Time
}

// Round measures every target, Redis and the load once.
func (s *Sampler) Round(ctx context.Context) []Sample {
	now := time.Now()
	if s.client == nil {
		s.client = &http.Client{Timeout: 3 * time.Second}
		s.first = now
		s.cpu = map[string]cpuMark{}
		s.pids = map[string]int{}
		s.scrapeErr = map[string]string{}
	}
	var out []Sample
	add := func(proc, metric string, v float64) {
		out = append(out, Sample{At: now, Elapsed: now.Sub(s.first).Seconds(), Process: proc, Metric: metric, Value: v})
	}
	scraped := map[string]map[string]float64{}
	scrape := func(url string) map[string]float64 {
		if m, ok := scraped[url]; ok {
			return m
		}
		m, err := s.scrape(ctx, url)
		if err != nil {
			if s.scrapeErr[url] == "" {
				s.scrapeErr[url] = err.Error()
			}
			m = nil
		}
		scraped[url] = m
		return m
	}
	for _, t := range s.Targets {
		pid := t.PID()
		if prev, seen := s.pids[t.Name]; seen && prev != pid {
			s.problem("%s: pid %d became %d at %s (restarted or gone)", t.Name, prev, pid, now.Sub(s.first).Round(time.Second))
		}
		s.pids[t.Name] = pid
		st, err := readProc(pid)
		if err != nil {
			s.problem("%s (pid %d): %v at %s", t.Name, pid, err, now.Sub(s.first).Round(time.Second))
			continue
		}
		add(t.Name, MetricRSS, st.rss)
		add(t.Name, MetricFDs, st.fds)
		add(t.Name, MetricThreads, st.threads)
		if prev, ok := s.cpu[t.Name]; ok && now.After(prev.at) {
			add(t.Name, MetricCPU, 100*(st.cpuTicks-prev.ticks)/clockTicks/now.Sub(prev.at).Seconds())
		}
		s.cpu[t.Name] = cpuMark{ticks: st.cpuTicks, at: now}
		if t.MetricsURL == "" {
			continue
		}
		if m := scrape(t.MetricsURL); m != nil {
			if v, ok := m["go_goroutines"]; ok {
				add(t.Name, MetricGoroutines, v)
			}
			if v, ok := m["go_memstats_heap_inuse_bytes"]; ok {
				add(t.Name, MetricHeapInuse, v)
			}
		}
	}
	s.sampleRedis(ctx, now, add)
	if m := scrape(s.ComsrvURL); m != nil {
		var soak, all float64
		for series, v := range m {
			label, ok := channelLabel(series, "comsrv_points_written_total")
			if !ok {
				continue
			}
			all += v
			if s.LoadLabels[label] {
				soak += v
			}
		}
		if p := s.written; p != nil && now.After(p.at) {
			dt := now.Sub(p.at).Seconds()
			add(ProcLoad, MetricPointsPS, (soak-p.soak)/dt)
			add(ProcLoad, MetricAllPS, (all-p.all)/dt)
		}
		s.written = &writtenMark{soak: soak, all: all, at: now}
	}
	for i := range s.Sinks {
		sk := &s.Sinks[i]
		m := scrape(sk.URL)
		if m == nil {
			continue
		}
		total, found := sumCounter(m, sk.Counter)
		if !found {
			continue
		}
		if !sk.lastAt.IsZero() && now.After(sk.lastAt) {
			add(ProcLoad, sk.Metric, (total-sk.last)/now.Sub(sk.lastAt).Seconds())
		}
		sk.last, sk.lastAt = total, now
	}
	return out
}

// PointsWritten is comsrv's count of point updates of the soak channels and of
// all channels at the last round that reached it.
func (s *Sampler) PointsWritten() (soak, all float64, at time.Time, ok bool) {
	if s.written == nil {
		return 0, 0, time.Time{}, false
	}
	return s.written.soak, s.written.all, s.written.at, true
}

// ScrapeErrors are the endpoints that failed at least once, with their first error.
func (s *Sampler) ScrapeErrors() map[string]string { return s.scrapeErr }

func (s *Sampler) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(s.Problems) < 50 {
		s.Problems = append(s.Problems, msg)
	}
}

func (s *Sampler) sampleRedis(ctx context.Context, now time.Time, add func(proc, metric string, v float64)) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if info, err := s.Redis.InfoMap(rctx, "memory").Result(); err == nil {
		if v, err := strconv.ParseFloat(info["Memory"]["used_memory"], 64); err == nil {
			add("redis", MetricUsedMemory, v)
		}
	} else if s.scrapeErr["redis"] == "" {
		s.scrapeErr["redis"] = err.Error()
	}
	stream, err := s.Redis.XInfoStream(rctx, keyspace.Changes).Result()
	if err != nil {
		if s.scrapeErr[keyspace.Changes] == "" {
			s.scrapeErr[keyspace.Changes] = err.Error()
		}
		return
	}
	add(ProcStream, MetricStreamLen, float64(stream.Length))
	if !s.addedAt.IsZero() && now.After(s.addedAt) {
		add(ProcStream, MetricEntriesPS, float64(stream.EntriesAdded-s.added)/now.Sub(s.addedAt).Seconds())
	}
	s.added, s.addedAt = stream.EntriesAdded, now
	groups, err := s.Redis.XInfoGroups(rctx, keyspace.Changes).Result()
	if err != nil {
		return
	}
	for _, g := range groups {
		lag := g.Lag
		if lag < 0 { // Redis cannot tell (entries deleted in between): count from the totals
			lag = stream.EntriesAdded - g.EntriesRead
		}
		add(ProcStream, MetricLagPrefix+g.Name, float64(lag))
	}
}

func (s *Sampler) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: each sample line's series (name
// and labels, as written) and value. Comments and histograms' extra lines are
// series like any other; nothing here needs more.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// sumCounter adds every series of the named metric; found is false when it has none.
func sumCounter(m map[string]float64, name string) (total float64, found bool) {
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
			found = true
		}
	}
	return total, found
}

// channelLabel is the channel label of a series of the named metric, as
// `name{channel="7"}`.
func channelLabel(series, name string) (string, bool) {
	rest, ok := strings.CutPrefix(series, name+"{")
	if !ok {
		return "", false
	}
	_, after, ok := strings.Cut(rest, `channel="`)
	if !ok {
		return "", false
	}
	label, _, ok := strings.Cut(after, `"`)
	return label, ok
}

type procStat struct {
	rss, fds, threads, cpuTicks float64
}

// readProc reads a process's resident memory and threads (/proc/PID/status), its
// open descriptors (/proc/PID/fd) and its CPU time (/proc/PID/stat).
func readProc(pid int) (procStat, error) {
	var st procStat
	if pid <= 0 {
		return st, fmt.Errorf("not running")
	}
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return st, fmt.Errorf("read status: %w", err)
	}
	for line := range bytes.Lines(status) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "VmRSS":
			st.rss = n * 1024 // kB
		case "Threads":
			st.threads = n
		}
	}
	if bytes.Contains(status, []byte("State:\tZ")) {
		return st, fmt.Errorf("a zombie (exited)")
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return st, fmt.Errorf("list fds: %w", err)
	}
	st.fds = float64(len(fds))
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return st, fmt.Errorf("read stat: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its ')' are plain.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		f := strings.Fields(string(stat[i+1:]))
		// f[0] is field 3 (state); utime and stime are fields 14 and 15.
		if len(f) > 12 {
			ut, _ := strconv.ParseFloat(f[11], 64)
			stt, _ := strconv.ParseFloat(f[12], 64)
			st.cpuTicks = ut + stt
		}
	}
	return st, nil
}
