package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
)

// The counted commands go to the counter channel's adjustment point 1
// (pv_power_limit, 0–100 % at a resolution of 0.1): command k carries the value
// (k mod 1000) / 10, so the device's write log tells which command it executed.
const (
	CommandType  = "A"
	CommandPoint = 1
	commandSpan  = 1000 // distinct values the point takes
)

func commandValue(k int) float64 { return float64(k%commandSpan) / 10 }

func commandIndex(v float64) int { return int(math.Round(v*10)) % commandSpan }

// CommandProducer sends command 1, 2, 3, … to the counter channel through the
// site's API (POST /commands, as the admin), one every `every`, each under its
// own id ("{prefix}-{k}"), as a careful integrator would: a command the API did
// not accept (an error, no answer) is sent again with the same id on the next
// tick until it is, so a command the gateway queued before it died is not run
// twice, and the sequence has no gaps.
type CommandProducer struct {
	gateway, password, prefix string
	every                     time.Duration
	client                    *http.Client

	mu       sync.Mutex
	token    string
	accepted map[int]string // k → command id
	refused  int            // attempts the API did not accept
	sent     int            // attempts
}

// NewCommandProducer sends through the gateway at addr (host:port), with ids
// starting with prefix.
func NewCommandProducer(gateway, password, prefix string, every time.Duration) *CommandProducer {
	return &CommandProducer{gateway: "http://" + gateway, password: password, prefix: prefix, every: every,
		client: &http.Client{Timeout: 3 * time.Second}, accepted: map[int]string{}}
}

// commandSettle bounds how long Run, once stopped, keeps sending a command whose
// last attempt was not accepted.
const commandSettle = 15 * time.Second

// Run sends until ctx is done; then it sends a command still unaccepted again
// until it is accepted (or commandSettle), so that every command it started
// has a known fate. A request is never cut by ctx.
func (p *CommandProducer) Run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	var settle <-chan time.Time
	for k := 1; ; {
		select {
		case <-ctx.Done():
			if k == 1 || p.isAccepted(k) {
				return
			}
			if settle == nil {
				settle = time.After(commandSettle)
			}
			select {
			case <-settle:
				return
			case <-t.C:
			}
		case <-t.C:
		}
		id := fmt.Sprintf("%s-%d", p.prefix, k)
		_, err := p.send(id, k)
		p.mu.Lock()
		p.sent++
		if err == nil {
			p.accepted[k] = id
		} else {
			p.refused++
		}
		p.mu.Unlock()
		if err == nil {
			if ctx.Err() != nil {
				return
			}
			k++
		}
	}
}

func (p *CommandProducer) isAccepted(k int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.accepted[k]
	return ok
}

func (p *CommandProducer) send(id string, k int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*p.client.Timeout)
	defer cancel()
	p.mu.Lock()
	tok := p.token
	p.mu.Unlock()
	if tok == "" {
		var err error
		if tok, err = login(ctx, p.gateway, p.password); err != nil {
			return "", err
		}
		p.mu.Lock()
		p.token = tok
		p.mu.Unlock()
	}
	body, _ := json.Marshal(map[string]any{"id": id, "channel": CounterChannel, "type": CommandType, "point": CommandPoint, "value": commandValue(k)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.gateway+"/commands", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized {
		p.mu.Lock()
		p.token = ""
		p.mu.Unlock()
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /commands: %s %.200s", resp.Status, b)
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ID != id {
		return "", fmt.Errorf("POST /commands: want id %s in %.200s", id, b)
	}
	return r.ID, nil
}

// Accepted is a copy of the accepted commands (k → id), how many attempts the
// API did not accept, and how many attempts were made.
func (p *CommandProducer) Accepted() (accepted map[int]string, refused, sent int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]string, len(p.accepted))
	for k, id := range p.accepted {
		out[k] = id
	}
	return out, p.refused, p.sent
}

// CommandResult counts one scenario's commands from the API to the device.
type CommandResult struct {
	Sent, Accepted, Refused int
	// Outcomes of the accepted ones, by cmd:{id} status (ok, failed, expired,
	// rejected); Unfinished ones have none (pending or executing) after the
	// scenario converged, or no cmd:{id} at all: lost (DESIGN §11).
	OK, Failed, Expired, Rejected, Unfinished int
	// AtDevice are accepted commands the device's write log holds; Twice those it
	// holds more than once (executed twice: must be 0).
	AtDevice, Twice int
	// OKNotAtDevice are commands reported ok that the device never saw (lost,
	// must be 0).
	OKNotAtDevice int
	// RanUnanswered are commands never accepted that the device executed: the
	// gateway queued one and died before it answered, and no retry with its id
	// got through (must be 0: the producer retries until it knows). Stray are
	// device writes of this run no sent command explains (must be 0).
	RanUnanswered, Stray int
}

// Lost is what DESIGN §11 counts as a lost command.
func (c CommandResult) Lost() int { return c.Unfinished + c.OKNotAtDevice }

// commandOutcomes reads cmd:{id} of every accepted command.
func commandOutcomes(ctx context.Context, rdb *redis.Client, accepted map[int]string) (map[int]command.Status, error) {
	out := make(map[int]command.Status, len(accepted))
	pipe := rdb.Pipeline()
	cmds := map[int]*redis.MapStringStringCmd{}
	for k, id := range accepted {
		cmds[k] = pipe.HGetAll(ctx, keyspace.Command(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read command results: %w", err)
	}
	for k, c := range cmds {
		out[k] = command.Status(c.Val()["status"])
	}
	return out, nil
}

// deviceWrite is one entry of voltsim's write log of a channel.
type deviceWrite struct {
	Type  string    `json:"type"`
	Point uint32    `json:"point"`
	Value float64   `json:"value"`
	At    time.Time `json:"at"`
}

// deviceWrites counts the counter channel's writes to the command point since
// `since`, by command index.
func deviceWrites(ctx context.Context, simControl string, since time.Time) (map[int]int, error) {
	u := fmt.Sprintf("http://%s/channels/%d/writes", simControl, CounterChannel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("voltsim writes: %w", err)
	}
	defer resp.Body.Close()
	var ws []deviceWrite
	if err := json.NewDecoder(resp.Body).Decode(&ws); err != nil {
		return nil, fmt.Errorf("voltsim writes: %w", err)
	}
	out := map[int]int{}
	for _, w := range ws {
		if w.Type == CommandType && w.Point == CommandPoint && !w.At.Before(since) {
			out[commandIndex(w.Value)]++
		}
	}
	return out, nil
}

// finished reports whether every accepted command has an outcome.
func finished(outcomes map[int]command.Status) bool {
	for _, st := range outcomes {
		if !st.Final() {
			return false
		}
	}
	return true
}

// tallyCommands counts the accepted commands' outcomes against the device's
// write log (k → writes of value k since the run started).
func tallyCommands(accepted map[int]string, refused, sent int, outcomes map[int]command.Status, writes map[int]int) CommandResult {
	r := CommandResult{Sent: sent, Accepted: len(accepted), Refused: refused}
	explained := map[int]bool{}
	for k := range accepted {
		i := k % commandSpan
		explained[i] = true
		switch st := outcomes[k]; st {
		case command.OK:
			r.OK++
			if writes[i] == 0 {
				r.OKNotAtDevice++
			}
		case command.Failed:
			r.Failed++
		case command.Expired:
			r.Expired++
		case command.Rejected:
			r.Rejected++
		default:
			r.Unfinished++
		}
		if n := writes[i]; n > 0 {
			r.AtDevice++
			if n > 1 {
				r.Twice++
			}
		}
	}
	for i, n := range writes {
		switch {
		case explained[i]:
		case i == (len(accepted)+1)%commandSpan: // the one command sent and not (yet) accepted, run
			r.RanUnanswered += n
		default:
			r.Stray += n
		}
	}
	return r
}
