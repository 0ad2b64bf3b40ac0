package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/tools/devstack"
)

// Scenario is one scripted fault: Inject breaks something, Restore repairs it.
type Scenario struct {
	Name string
	// What it does and what DESIGN §11 promises for it (docs/chaos.md).
	About string
	// Layout is the layout it needs ("": either).
	Layout  Layout
	Inject  func(ctx context.Context, s *Stack) error
	Restore func(ctx context.Context, s *Stack) error
}

// killRestart kills a process with SIGKILL and starts it again.
func killRestart(name, about string) Scenario {
	return killRestartAs(name+"-kill9", name, "", about)
}

// killRestartAs is killRestart of process name under the scenario name scenario,
// in layout (or either).
func killRestartAs(scenario, name string, layout Layout, about string) Scenario {
	return Scenario{
		Name:    scenario,
		Layout:  layout,
		About:   about,
		Inject:  func(_ context.Context, s *Stack) error { return s.Kill(name) },
		Restore: func(ctx context.Context, s *Stack) error { return s.Restart(ctx, name) },
	}
}

// deviceFault sets a voltsim fault on the counter channel and clears it.
func deviceFault(name, fault, about string) Scenario {
	return Scenario{
		Name:    name,
		About:   about,
		Inject:  func(ctx context.Context, s *Stack) error { return s.simFault(ctx, fault) },
		Restore: func(ctx context.Context, s *Stack) error { return s.simFault(ctx, `{"mode":"none"}`) },
	}
}

// Scenarios are the scripted faults, in priority order.
var Scenarios = []Scenario{
	killRestart("redis", "redis-server (AOF, appendfsync always) killed -9 and restarted: nothing Redis acknowledged may be lost; every service reconnects without a restart"),
	killRestart("cloud", "the cloud hub killed -9 and restarted while the edge keeps producing: the edge's UPLINK stream buffers, the hub's durable history consumer resumes; 0 lost at the cloud"),
	{
		Name:    "leaf-cut",
		About:   "the edge's leaf link to the hub cut (both ends running) and healed: the UPLINK stream buffers, the hub resumes sourcing; 0 lost at the cloud",
		Inject:  func(_ context.Context, s *Stack) error { s.CutLeaf(); return nil },
		Restore: func(_ context.Context, s *Stack) error { s.HealLeaf(); return nil },
	},
	killRestart("mosquitto", "the MQTT broker killed and restarted: netsrv spools and replays (durable up to the broker); the test subscriber misses what was published while it was away (pub/sub, not durable)"),
	killRestartAs("edge-kill9", "edge", LayoutAppliance, "the edge appliance (every edge service in one process) killed -9 and restarted: history, uplink and netsrv resume from their last acknowledgement; queued commands run after it"),
	killRestartAs("bridge-kill9", "edge", LayoutSplit, "voltage-edge alone (embedded NATS and the bridge; the services run on) killed -9 and restarted: the uplink resumes from its last acknowledgement, 0 lost at the cloud"),
	killRestartAs("comsrv-kill9", "comsrv", LayoutSplit, "comsrv killed -9 and restarted: no device is read while it is away (not read at source); commands accepted meanwhile wait in comsrv:{ch}:cmd and run after the restart, at most once"),
	killRestartAs("modsrv-kill9", "modsrv", LayoutSplit, "modsrv killed -9 and restarted: instance values pause (it mirrors the current state when back); channel data, history and the cloud are untouched"),
	killRestartAs("hissrv-kill9", "hissrv", LayoutSplit, "hissrv killed -9 and restarted: it resumes voltage:changes from its last acknowledgement, history holds every value once"),
	killRestartAs("rulesrv-kill9", "rulesrv", LayoutSplit, "rulesrv killed -9 and restarted: rules pause; data, commands and alarms are untouched"),
	killRestartAs("alarmsrv-kill9", "alarmsrv", LayoutSplit, "alarmsrv killed -9 and restarted: transitions while it is away are not evaluated (it evaluates the state it finds when back); every event it wrote reaches the cloud"),
	killRestartAs("apigateway-kill9", "apigateway", LayoutSplit, "the API gateway killed -9 and restarted: commands are refused while it is away (the client is told and sends again with the same id); every command runs exactly once"),
	killRestartAs("netsrv-kill9", "netsrv", LayoutSplit, "netsrv killed -9 and restarted: it resumes voltage:changes from its last acknowledgement and its spool, MQTT gets every value"),
	deviceFault("device-flap", `{"mode":"drop"}`, "the counter device drops every connection (voltsim fault drop), then recovers: values set while it was unreachable are never read (not a loss of the system); everything read is kept"),
	deviceFault("device-slow", `{"mode":"delay","delay_ms":400}`, "the counter device answers after 400 ms (longer than the poll interval): comsrv reads fewer values; everything read is kept"),
}

// ScenarioByName finds a scenario.
func ScenarioByName(name string) (Scenario, bool) {
	i := slices.IndexFunc(Scenarios, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		return Scenario{}, false
	}
	return Scenarios[i], true
}

func (s *Stack) simFault(ctx context.Context, body string) error {
	u := fmt.Sprintf("http://%s/channels/%d/faults", s.SimControl, CounterChannel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("voltsim fault %s: %w", body, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("voltsim fault %s: %s %.200s", body, resp.Status, b)
	}
	return nil
}

// Timing sets the pace of a run.
type Timing struct {
	Every    time.Duration // one counted value every Every (slower than the poll interval)
	Outage   time.Duration // how long the fault lasts
	After    time.Duration // how long production goes on after recovery
	Deadline time.Duration // how long to wait for start, recovery and convergence each
}

// SinkResult is what one sink holds of a scenario's sequence.
type SinkResult struct {
	Sink       string
	Got        int // distinct counted values
	Duplicates int // extra copies (a value read again after a reconnect is one in every sink)
	// DupVsRedis are copies beyond those voltage:changes holds: delivered twice.
	DupVsRedis  int
	Missing     int           // produced values it does not hold
	LostVsRedis int           // values voltage:changes holds that it does not (durable sinks: must be 0)
	Recovery    time.Duration // end of the fault → first value set after it seen here, restart included (-1: never)
}

// Result is one scenario's count.
type Result struct {
	Scenario string
	Produced int
	Sinks    []SinkResult
	// AckedLost are values a downstream sink got from voltage:changes that the
	// stream no longer holds: Redis lost acknowledged writes (must be 0).
	AckedLost int
	Commands  CommandResult
	Alarms    AlarmResult
	Err       error
}

// Sink returns the named sink's result.
func (r Result) Sink(name string) SinkResult {
	for _, s := range r.Sinks {
		if s.Sink == name {
			return s
		}
	}
	return SinkResult{Sink: name, Recovery: -1}
}

// Durable sinks are those DESIGN §11 promises to keep whatever fails: history and
// the cloud uplink. voltage:changes is the reference; MQTT at a subscriber is pub/sub.
var Durable = []string{"history", "cloud"}

// fedByStream are the sinks that read voltage:changes (or what the uplink made
// of it): a copy beyond the stream's is a delivery twice. modsrv writes its
// instance values itself, and writes the current one again when it comes back.
var fedByStream = []string{"history", "cloud", "mqtt"}

// Run runs one scenario: count from base, wait until the sequence flows into every
// sink, inject, wait Outage, restore, measure recovery, produce for After more,
// then wait until the durable sinks hold what the stream holds and count.
func Run(ctx context.Context, st *Stack, sinks []Sink, sc Scenario, base int, tm Timing) Result {
	res := Result{Scenario: sc.Name}
	if sc.Layout != "" && sc.Layout != st.Layout() {
		res.Err = fmt.Errorf("needs the %s layout; the stack runs the %s one", sc.Layout, st.Layout())
		return res
	}
	rdb, err := redisx.Connect(ctx, "redis://"+st.RedisAddr+"/0")
	if err != nil {
		res.Err = err
		return res
	}
	defer rdb.Close()
	alarms := alarmCounter{rdb: rdb, hub: st.HubNATS, site: st.SiteID}
	since := time.Now() // the alarm events and device writes of this run are those after it
	// The producers end before Run returns, whichever way: stop, then wait.
	var producing sync.WaitGroup
	defer producing.Wait()
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	p := NewProducer(st.SimControl, tm.Every, base)
	cp := NewCommandProducer(st.Services["apigateway"], st.AdminPassword, fmt.Sprintf("chaos-%d", base), tm.Every)
	producing.Add(2)
	go func() { defer producing.Done(); p.Run(pctx) }()
	go func() { defer producing.Done(); cp.Run(pctx) }()
	inRange := func(c Counts, from int) bool {
		for v := range c {
			if v > from && v <= base+1_000_000 {
				return true
			}
		}
		return false
	}
	// Flowing: a value of this run in every sink.
	if err := waitAll(ctx, sinks, tm.Deadline, func(_ string, c Counts) bool { return inRange(c, base) }); err != nil {
		res.Err = fmt.Errorf("before the fault: %w", err)
		return res
	}
	if err := sc.Inject(ctx, st); err != nil {
		res.Err = fmt.Errorf("inject: %w", err)
		return res
	}
	select {
	case <-ctx.Done():
		res.Err = ctx.Err()
		return res
	case <-time.After(tm.Outage): // the outage itself is the scripted duration
	}
	restored := time.Now()      // recovery counts from the end of the fault, restart included
	mark := base + p.Produced() // values above mark were set after the fault ended
	if err := sc.Restore(ctx, st); err != nil {
		res.Err = fmt.Errorf("restore: %w", err)
		return res
	}
	recovery := map[string]time.Duration{}
	_ = waitAll(ctx, sinks, tm.Deadline, func(name string, c Counts) bool {
		if _, ok := recovery[name]; ok {
			return true
		}
		if inRange(c, mark) {
			recovery[name] = time.Since(restored)
			return true
		}
		return false
	})
	select {
	case <-ctx.Done():
	case <-time.After(tm.After):
	}
	stop()
	producing.Wait()
	produced := p.Produced()
	res.Produced = produced
	accepted, refused, sent := cp.Accepted()

	// Converge: the durable sinks hold every value of the stream (or the deadline).
	var counts map[string]Counts
	deadline := time.Now().Add(tm.Deadline)
	for {
		counts = map[string]Counts{}
		var err error
		// The reference last: a value comsrv read just now may reach the stream
		// and then history between two reads, and must not look like a value
		// the stream lost.
		for _, s := range slices.Backward(sinks) {
			if counts[s.Name()], err = s.Read(ctx); err != nil {
				counts[s.Name()] = nil
			}
		}
		outcomes, oerr := commandOutcomes(ctx, rdb, accepted)
		ar, aerr := alarms.count(ctx, since, restored)
		done := converged(counts, base, produced) && oerr == nil && finished(outcomes) && aerr == nil && ar.LostAtCloud == 0
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			res.Alarms = ar
			if aerr != nil {
				res.Err = fmt.Errorf("count the alarm path: %w", aerr)
			}
			writes, werr := deviceWrites(ctx, st.SimControl, since)
			if err := errors.Join(oerr, werr); err != nil {
				res.Err = fmt.Errorf("count the commands: %w", err)
			}
			res.Commands = tallyCommands(accepted, refused, sent, outcomes, writes)
			break
		}
		_ = devstack.Sleep(ctx, 300*time.Millisecond)
	}
	var names []string
	for _, s := range sinks {
		names = append(names, s.Name())
		if counts[s.Name()] == nil {
			res.Err = fmt.Errorf("%s could not be read after the scenario", s.Name())
		}
	}
	res.Sinks, res.AckedLost = tally(names, counts, recovery, base, produced)
	return res
}

// tally counts the values base+1 … base+produced in each sink against the
// reference, voltage:changes ("redis"): distinct values, extra copies, copies
// beyond the stream's, values missing, values the stream holds that the sink
// does not; and ackedLost, values history or the cloud got from the stream that
// the stream no longer holds (Redis lost acknowledged writes).
func tally(names []string, counts map[string]Counts, recovery map[string]time.Duration, base, produced int) (out []SinkResult, ackedLost int) {
	redis := counts["redis"]
	for _, name := range names {
		c := counts[name]
		r := SinkResult{Sink: name, Recovery: -1}
		if d, ok := recovery[name]; ok {
			r.Recovery = d
		}
		for v := base + 1; v <= base+produced; v++ {
			switch n := c[v]; {
			case n == 0:
				r.Missing++
				if redis[v] > 0 {
					r.LostVsRedis++
				}
			default:
				r.Got++
				r.Duplicates += n - 1
				if slices.Contains(fedByStream, name) && n > max(redis[v], 1) {
					r.DupVsRedis += n - max(redis[v], 1)
				}
			}
		}
		out = append(out, r)
	}
	for v := base + 1; v <= base+produced; v++ {
		if redis[v] == 0 && (counts["history"][v] > 0 || counts["cloud"][v] > 0) {
			ackedLost++
		}
	}
	return out, ackedLost
}

func converged(counts map[string]Counts, base, produced int) bool {
	redis := counts["redis"]
	if redis == nil {
		return false
	}
	for _, name := range Durable {
		c := counts[name]
		if c == nil {
			return false
		}
		for v := base + 1; v <= base+produced; v++ {
			if redis[v] > 0 && c[v] == 0 {
				return false
			}
		}
	}
	return true
}

// waitAll reads every sink until ok holds for each (a sink that once held stays
// held), or the deadline.
func waitAll(ctx context.Context, sinks []Sink, timeout time.Duration, ok func(name string, c Counts) bool) error {
	deadline := time.Now().Add(timeout)
	done := map[string]bool{}
	var lastErr error
	for {
		for _, s := range sinks {
			if done[s.Name()] {
				continue
			}
			c, err := s.Read(ctx)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", s.Name(), err)
				continue
			}
			if ok(s.Name(), c) {
				done[s.Name()] = true
			}
		}
		if len(done) == len(sinks) {
			return nil
		}
		if time.Now().After(deadline) {
			var waiting []string
			for _, s := range sinks {
				if !done[s.Name()] {
					waiting = append(waiting, s.Name())
				}
			}
			return fmt.Errorf("within %s, still waiting for %v (last error: %v)", timeout, waiting, lastErr)
		}
		if err := devstack.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}
