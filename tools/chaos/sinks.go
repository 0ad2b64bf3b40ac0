package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
)

// Producer sets the counter point to 1, 2, 3, … at a fixed rate through voltsim's
// control API and remembers when it set each value.
type Producer struct {
	control string
	every   time.Duration
	base    int // values are base+1, base+2, …

	mu   sync.Mutex
	at   []time.Time // at[i] is when value i+1 was set
	errs int
}

// NewProducer counts on the stack's simulator from base+1 on, one value every
// `every`. Each scenario takes its own base, so the sinks (which keep everything)
// tell the scenarios apart.
func NewProducer(control string, every time.Duration, base int) *Producer {
	return &Producer{control: control, every: every, base: base}
}

// Run produces until ctx is done. A value the control API refused is retried on
// the next tick with the same number, so the sequence has no gaps.
func (p *Producer) Run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	u := fmt.Sprintf("http://%s/channels/%d/points/%s/%d", p.control, CounterChannel, CounterType, CounterPoint)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		n := p.base + len(p.at) + 1
		p.mu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader([]byte(`{"value":`+strconv.Itoa(n)+`}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("answered %s", resp.Status)
			}
		}
		p.mu.Lock()
		if err == nil {
			p.at = append(p.at, time.Now())
		} else {
			p.errs++
		}
		p.mu.Unlock()
		if err == nil {
			// The counted alarm's signal follows the value's parity: a rise every
			// second value. Best effort: the alarm path is counted from what comsrv read.
			p.put(ctx, client, fmt.Sprintf("http://%s/channels/%d/points/S/%d", p.control, CounterChannel, alarmSignalPt), n%2)
		}
	}
}

func (p *Producer) put(ctx context.Context, client *http.Client, u string, v int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader([]byte(`{"value":`+strconv.Itoa(v)+`}`)))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// Produced is how many values were set so far (base+1 … base+Produced).
func (p *Producer) Produced() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.at)
}

// SetAt is when value n was set (zero time when it was not).
func (p *Producer) SetAt(n int) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	n -= p.base
	if n < 1 || n > len(p.at) {
		return time.Time{}
	}
	return p.at[n-1]
}

// Counts is how often each counted value (1..produced) was seen in a sink.
type Counts map[int]int

func (c Counts) add(v float64) {
	n := math.Round(v)
	if n >= 1 && math.Abs(v-n) < 1e-6 {
		c[int(n)]++
	}
}

// Sink reads every value of the counter point one sink holds.
type Sink interface {
	Name() string
	Read(ctx context.Context) (Counts, error)
}

// StreamSink reads one point's entries in voltage:changes (Redis). The counter
// point's entries are the reference, "redis": what comsrv wrote and Redis
// acknowledged. ModelSink reads the instance measurement modsrv routes it to.
type StreamSink struct {
	RDB        *redis.Client
	Label      string // the sink's name; "" is "redis"
	Key, Field string // the hash and field; "" is the counter point
}

func (s StreamSink) Name() string {
	if s.Label == "" {
		return "redis"
	}
	return s.Label
}

func (s StreamSink) Read(ctx context.Context) (Counts, error) {
	key, field := s.Key, s.Field
	if key == "" {
		key, field = counterHash, counterField
	}
	c := Counts{}
	if err := eachChange(ctx, s.RDB, "-", key, field, c.add); err != nil {
		return nil, err
	}
	return c, nil
}

// ModelSink is the counter as modsrv's instance pv1 (id 2) carries it:
// measurement 5, total_energy, routed from the counter point (the demo's
// modsrv/instances/pv1/channel_routing.csv).
func ModelSink(rdb *redis.Client) StreamSink {
	return StreamSink{RDB: rdb, Label: "model", Key: keyspace.InstanceMeasurements(counterInstance), Field: counterMeasurement}
}

type series []struct {
	Values [][2]float64 `json:"values"`
}

// rangeAnswer is hissrv's /history/range answer ("points") or the cloud's
// /sites/{site}/history answer ("series"): the same series.
type rangeAnswer struct {
	Points series `json:"points"`
	Series series `json:"series"`
}

// HistorySink reads hissrv's raw samples through its internal query API.
type HistorySink struct {
	Addr  string // hissrv's HTTP address
	Since time.Time
}

func (HistorySink) Name() string { return "history" }

func (h HistorySink) Read(ctx context.Context) (Counts, error) {
	return readRange(ctx, "http://"+h.Addr+"/history/range", "", h.Since)
}

// CloudSink reads the cloud hub's history of the site (GET /sites/{site}/history).
type CloudSink struct {
	HTTP, Site, Password string
	Since                time.Time

	mu    sync.Mutex
	token string
}

func (*CloudSink) Name() string { return "cloud" }

func (c *CloudSink) Read(ctx context.Context) (Counts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" {
		tok, err := login(ctx, "http://"+c.HTTP, c.Password)
		if err != nil {
			return nil, err
		}
		c.token = tok
	}
	counts, err := readRange(ctx, "http://"+c.HTTP+"/sites/"+c.Site+"/history", c.token, c.Since)
	if err != nil {
		c.token = "" // a restarted hub may want a new login
	}
	return counts, err
}

func readRange(ctx context.Context, base, token string, since time.Time) (Counts, error) {
	q := url.Values{}
	q.Set("point", counterName)
	q.Set("start", strconv.FormatInt(since.Add(-time.Minute).Unix(), 10))
	q.Set("end", "now")
	q.Set("tier", "raw")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return Counts{}, nil // no history of the point yet
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %.200s", base, resp.Status, body)
	}
	var a rangeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("GET %s: %w", base, err)
	}
	c := Counts{}
	for _, p := range append(a.Points, a.Series...) {
		for _, v := range p.Values {
			c.add(v[1])
		}
	}
	return c, nil
}

func login(ctx context.Context, base, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"user": "admin", "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("login at %s: %w", base, err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("login at %s: %s %v", base, resp.Status, err)
	}
	return tok.AccessToken, nil
}

// MQTTSink subscribes to netsrv's "local" link (json format) and counts what
// arrives. It reconnects and subscribes again after the broker comes back; what
// was published while it was away is not redelivered (clean session): MQTT
// pub/sub is not one of DESIGN §11's durable paths at the subscriber.
type MQTTSink struct {
	client mqtt.Client
	mu     sync.Mutex
	counts Counts
}

// StartMQTTSink connects to broker ("tcp://host:port") and subscribes to voltage/#.
func StartMQTTSink(broker string) (*MQTTSink, error) {
	m := &MQTTSink{counts: Counts{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("voltchaos").
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).SetCleanSession(true)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		c.Subscribe("voltage/#", 1, m.handle)
	})
	m.client = mqtt.NewClient(opts)
	tok := m.client.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("MQTT subscriber at %s: %v", broker, tok.Error())
	}
	return m, nil
}

func (m *MQTTSink) handle(_ mqtt.Client, msg mqtt.Message) {
	var body struct {
		Points []struct {
			Kind   string          `json:"kind"`
			Source json.RawMessage `json:"source"`
			Type   string          `json:"type"`
			Point  json.RawMessage `json:"point"`
			V      float64         `json:"v"`
		} `json:"points"`
	}
	if err := json.Unmarshal(msg.Payload(), &body); err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range body.Points {
		if p.Kind == "channel" && unquote(p.Source) == strconv.Itoa(CounterChannel) && p.Type == CounterType &&
			unquote(p.Point) == strconv.Itoa(CounterPoint) {
			m.counts.add(p.V)
		}
	}
}

func unquote(r json.RawMessage) string {
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(r)
}

func (*MQTTSink) Name() string { return "mqtt" }

func (m *MQTTSink) Read(context.Context) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(Counts, len(m.counts))
	for k, v := range m.counts {
		c[k] = v
	}
	return c, nil
}

// Reset forgets what arrived (between scenarios).
func (m *MQTTSink) Reset() {
	m.mu.Lock()
	m.counts = Counts{}
	m.mu.Unlock()
}

// Close disconnects.
func (m *MQTTSink) Close() { m.client.Disconnect(250) }
