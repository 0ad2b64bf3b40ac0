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
// site's API (POST /commands, as the admin), one every `every`, and remembers
// which ones the API accepted (answered with an id) and which it refused. A
// refused command was never the system's: the client was told.
type CommandProducer struct {
	gateway, password string
	every             time.Duration
	client            *http.Client

	mu       sync.Mutex
	token    string
	accepted map[int]string // k → command id
	refused  int
	sent     int
}

// NewCommandProducer sends through the gateway at addr (host:port).
func NewCommandProducer(gateway, password string, every time.Duration) *CommandProducer {
	return &CommandProducer{gateway: "http://" + gateway, password: password, every: every,
		client: &http.Client{Timeout: 3 * time.Second}, accepted: map[int]string{}}
}

// Run sends until ctx is done.
func (p *CommandProducer) Run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := p.send(ctx, k)
		p.mu.Lock()
		p.sent++
		if err == nil {
			p.accepted[k] = id
		} else if ctx.Err() == nil {
			p.refused++
		}
		p.mu.Unlock()
	}
}

func (p *CommandProducer) send(ctx context.Context, k int) (string, error) {
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
	body, _ := json.Marshal(map[string]any{"channel": CounterChannel, "type": CommandType, "point": CommandPoint, "value": commandValue(k)})
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
	if err := json.Unmarshal(b, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("POST /commands: no id in %.200s", b)
	}
	return r.ID, nil
}

// Accepted is a copy of the accepted commands (k → id), how many were refused
// and how many were sent.
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
	// RanUnanswered are refused commands the device executed: the gateway
	// queued them and died before it answered (the client cannot tell; it
	// would have to ask GET /commands). Stray are device writes of this run no
	// sent command explains (must be 0).
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
		case i >= 1 && i <= sent && sent < commandSpan: // sent, refused, and still run
			r.RanUnanswered += n
		default:
			r.Stray += n
		}
	}
	return r
}
