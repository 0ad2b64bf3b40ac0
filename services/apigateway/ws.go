package apigateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/statestore"
)

// WebSocket push (/ws). Concurrency: the hub's reader goroutine decodes every
// Redis message once and merges it into the pending set of each interested client
// under that client's mutex — an O(1) step that never blocks on a socket. Each
// client's writer goroutine sends its pending set as one coalesced frame as soon
// as it is free (the changes that arrive while a frame is being written go
// together in the next; websocket.flush_interval can space frames out). A client whose frames do not leave within the write timeout, or
// whose pending set or event queue overflows, is dropped with a reason; nothing a
// client does can slow the hub or another client.

// wsMaxMessage bounds what a client may send in one message.
const wsMaxMessage = 64 << 10

// Limits of one client's subscriptions.
const (
	wsMaxChannels  = 10_000
	wsMaxInstances = 10_000
	wsMaxPatterns  = 100
)

// wsRoles are the roles each kind of subscription needs.
var wsRoles = map[string]Role{
	"channels": Viewer, "instances": Viewer, "points": Viewer, "alarms": Viewer, "commands": Operator,
}

// wsRequest is a message from a client.
type wsRequest struct {
	Type      string   `json:"type"` // auth, subscribe, unsubscribe
	Token     string   `json:"token,omitempty"`
	Channels  []uint32 `json:"channels,omitempty"`
	Instances []uint32 `json:"instances,omitempty"`
	Points    []string `json:"points,omitempty"`
	Alarms    bool     `json:"alarms,omitempty"`
	Commands  bool     `json:"commands,omitempty"`
}

// wsValue is one value in a snapshot or changes frame.
type wsValue struct {
	Channel  uint32   `json:"channel,omitempty"`
	Type     string   `json:"type,omitempty"`
	Instance uint32   `json:"instance,omitempty"`
	Point    uint32   `json:"point"`
	Value    *float64 `json:"value"`
	Quality  string   `json:"quality"`
	TS       int64    `json:"ts,omitempty"`
}

// wsKey identifies a value in a client's pending set.
type wsKey struct {
	instance bool
	id       uint32
	family   byte
	point    uint32
}

type wsClient struct {
	s      *server
	conn   *websocket.Conn
	who    principal
	exp    time.Time
	gen    int64
	cancel context.CancelFunc
	wake   chan struct{}

	mu        sync.Mutex
	channels  map[uint32]bool
	instances map[uint32]bool
	patterns  []pattern
	alarms    bool
	commands  bool
	pending   map[wsKey]wsValue
	events    [][]byte
	dropped   string // the reason, once dropped
}

// hub owns the Redis subscription the clients share.
type hub struct {
	s  *server
	ps *redis.PubSub

	mu      sync.Mutex
	clients map[*wsClient]struct{}
	refs    map[string]int // subscribed Redis channels and patterns → clients needing them

	alarmWake chan struct{} // a client subscribed to alarms
}

func newHub(s *server) *hub {
	return &hub{s: s, clients: map[*wsClient]struct{}{}, refs: map[string]int{}, alarmWake: make(chan struct{}, 1)}
}

// run receives pub/sub messages and alarm events until ctx is done.
func (h *hub) run(ctx context.Context) {
	defer h.ps.Close()
	var wg sync.WaitGroup
	wg.Go(func() { h.alarmLoop(ctx) })
	ch := h.ps.Channel(redis.WithChannelSize(1000))
	for {
		select {
		case <-ctx.Done():
			h.closeAll("shutdown")
			wg.Wait()
			return
		case m, ok := <-ch:
			if !ok {
				wg.Wait()
				return
			}
			h.dispatch(m)
		}
	}
}

func (h *hub) closeAll(reason string) {
	h.mu.Lock()
	cs := make([]*wsClient, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.drop(reason, reason)
	}
}

// redisNames are the pub/sub channels (and patterns, prefixed "p:") a
// subscription needs.
func subscriptionNames(r wsRequest) ([]string, error) {
	var names []string
	for _, ch := range r.Channels {
		names = append(names, keyspace.ChannelPoints(ch, point.Telemetry), keyspace.ChannelPoints(ch, point.Signal))
	}
	for _, id := range r.Instances {
		names = append(names, keyspace.InstanceMeasurements(id))
	}
	for _, ps := range r.Points {
		p, err := parsePattern(ps)
		if err != nil {
			return nil, err
		}
		for _, t := range p.types {
			if p.channel != nil {
				names = append(names, keyspace.ChannelPoints(*p.channel, t))
			} else {
				// The pattern is the key of a channel whose id is "*".
				names = append(names, "p:"+strings.Replace(keyspace.ChannelPoints(0, t), ":0:", ":*:", 1))
			}
		}
	}
	if r.Commands {
		names = append(names, keyspace.CommandResult)
	}
	return names, nil
}

// ref adds (delta 1) or removes (-1) Redis subscriptions.
func (h *hub) ref(ctx context.Context, names []string, delta int) error {
	h.mu.Lock()
	var add, del, padd, pdel []string
	for _, n := range names {
		before := h.refs[n]
		h.refs[n] = before + delta
		switch {
		case before == 0 && delta > 0:
			if p, ok := strings.CutPrefix(n, "p:"); ok {
				padd = append(padd, p)
			} else {
				add = append(add, n)
			}
		case before+delta <= 0:
			delete(h.refs, n)
			if p, ok := strings.CutPrefix(n, "p:"); ok {
				pdel = append(pdel, p)
			} else {
				del = append(del, n)
			}
		}
	}
	h.mu.Unlock()
	var errs []error
	if len(add) > 0 {
		errs = append(errs, h.ps.Subscribe(ctx, add...))
	}
	if len(padd) > 0 {
		errs = append(errs, h.ps.PSubscribe(ctx, padd...))
	}
	if len(del) > 0 {
		errs = append(errs, h.ps.Unsubscribe(ctx, del...))
	}
	if len(pdel) > 0 {
		errs = append(errs, h.ps.PUnsubscribe(ctx, pdel...))
	}
	return errors.Join(errs...)
}

func (h *hub) snapshotClients() []*wsClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := make([]*wsClient, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	return cs
}

// dispatch hands one pub/sub message to the clients that want it.
func (h *hub) dispatch(m *redis.Message) {
	if m.Channel == keyspace.CommandResult {
		var r command.Result
		if json.Unmarshal([]byte(m.Payload), &r) != nil {
			return
		}
		frame, _ := json.Marshal(map[string]any{"type": "command", "result": resultView(r)})
		for _, c := range h.snapshotClients() {
			c.mu.Lock()
			want := c.commands
			c.mu.Unlock()
			if want {
				c.event(frame)
			}
		}
		return
	}
	src, ok := keyspace.ParseChangeKey(m.Channel)
	if !ok {
		return
	}
	msg, err := statestore.DecodeMessage([]byte(m.Payload))
	if err != nil {
		return
	}
	vals := make([]wsValue, 0, len(msg.V))
	for id, v := range msg.V {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			continue
		}
		v := v
		wv := wsValue{Point: uint32(n), Value: &v, Quality: msg.Quality(id).String(), TS: msg.PointTS(id)}
		if src.Instance {
			wv.Instance = src.ID
		} else {
			wv.Channel, wv.Type = src.ID, src.Family
		}
		vals = append(vals, wv)
	}
	fam := byte(0)
	if src.Family != "" {
		fam = src.Family[0]
	}
	for _, c := range h.snapshotClients() {
		c.merge(src, fam, vals)
	}
}

// merge adds values to the client's pending set, if it subscribed to them.
func (c *wsClient) merge(src keyspace.ChangeSource, fam byte, vals []wsValue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped != "" {
		return
	}
	all := false
	var pats []pattern
	if src.Instance {
		all = c.instances[src.ID] && src.Family == "M"
	} else {
		all = c.channels[src.ID] && (fam == 'T' || fam == 'S')
		for _, p := range c.patterns {
			if (p.channel == nil || *p.channel == src.ID) && hasType(p.types, point.Type(fam)) {
				if p.point == "" {
					all = true
				}
				pats = append(pats, p)
			}
		}
	}
	if !all && len(pats) == 0 {
		return
	}
	for _, v := range vals {
		if !all && !pointIn(pats, v.Point) {
			continue
		}
		c.pending[wsKey{src.Instance, src.ID, fam, v.Point}] = v
	}
	if len(c.pending) > c.s.set.WebSocket.MaxPending {
		c.dropLocked("slow", "slow consumer: too many changes waiting")
		return
	}
	select { // the writer sends them as soon as it is free
	case c.wake <- struct{}{}:
	default:
	}
}

func hasType(ts []point.Type, t point.Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func pointIn(pats []pattern, id uint32) bool {
	s := strconv.FormatUint(uint64(id), 10)
	for _, p := range pats {
		if p.point == s {
			return true
		}
	}
	return false
}

// event queues a whole frame (alarm, command result, snapshot, error).
func (c *wsClient) event(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped != "" {
		return
	}
	if len(c.events) >= c.s.set.WebSocket.MaxEvents {
		c.dropLocked("slow", "slow consumer: too many events waiting")
		return
	}
	c.events = append(c.events, frame)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// drop closes the client with a reason (sent in the close frame when possible).
func (c *wsClient) drop(metric, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(metric, reason)
}

func (c *wsClient) dropLocked(metric, reason string) {
	if c.dropped != "" {
		return
	}
	c.dropped = reason
	if metric != "" {
		c.s.metrics.wsDropped.WithLabelValues(metric).Inc()
	}
	c.cancel()
}

// alarmLoop follows alarm:events and pushes every new event to the clients that
// subscribed to alarms. It reads only while such a client exists, with a short
// block so that stopping never waits long.
func (h *hub) alarmLoop(ctx context.Context) {
	last := "$"
	for ctx.Err() == nil {
		if !h.wantAlarms() {
			last = "$"
			select {
			case <-ctx.Done():
				return
			case <-h.alarmWake:
			}
			continue
		}
		res, err := h.s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{keyspace.AlarmEvents, last}, Count: 100, Block: 250 * time.Millisecond}).Result()
		if err != nil {
			if !errors.Is(err, redis.Nil) && ctx.Err() == nil {
				select { // Redis away: try again a little later
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		for _, st := range res {
			for _, m := range st.Messages {
				last = m.ID
				f := make(map[string]string, len(m.Values))
				for k, v := range m.Values {
					f[k] = str(v)
				}
				frame, _ := json.Marshal(map[string]any{"type": "alarm", "id": m.ID, "event": f})
				for _, c := range h.snapshotClients() {
					c.mu.Lock()
					want := c.alarms
					c.mu.Unlock()
					if want {
						c.event(frame)
					}
				}
			}
		}
	}
}

func (h *hub) wantAlarms() bool {
	for _, c := range h.snapshotClients() {
		c.mu.Lock()
		want := c.alarms && c.dropped == ""
		c.mu.Unlock()
		if want {
			return true
		}
	}
	return false
}

// serveWS is GET /ws.
func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	h := s.hub
	h.mu.Lock()
	full := len(h.clients) >= s.set.WebSocket.MaxClients
	h.mu.Unlock()
	if full {
		http.Error(w, "too many WebSocket clients", http.StatusServiceUnavailable)
		return
	}
	// A header token is checked before the upgrade, so a bad one gets a plain 401.
	var who principal
	var cl *claims
	if raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		p, c, err := s.tokens.verifyClaims(r.Context(), raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="voltage", error="invalid_token"`)
			http.Error(w, "invalid or expired token", http.StatusUnauthorized)
			return
		}
		who, cl = p, c
	}
	var origins []string
	for _, o := range s.set.CORS.AllowedOrigins {
		if u, err := url.Parse(o); err == nil {
			origins = append(origins, u.Host)
		}
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: origins})
	if err != nil {
		return
	}
	conn.SetReadLimit(wsMaxMessage)
	ctx, cancel := context.WithCancel(s.runCtx)
	defer cancel()
	if cl == nil {
		// Browsers cannot set headers on a WebSocket: the first message authenticates.
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		var req wsRequest
		_, b, err := conn.Read(actx)
		acancel()
		if err == nil {
			err = json.Unmarshal(b, &req)
		}
		if err == nil && req.Type != "auth" {
			err = errors.New("first message must be {\"type\":\"auth\",\"token\":...}")
		}
		if err == nil {
			who, cl, err = s.tokens.verifyClaims(ctx, req.Token)
		}
		if err != nil {
			s.metrics.wsDropped.WithLabelValues("token").Inc()
			_ = conn.Close(websocket.StatusPolicyViolation, "authentication failed")
			return
		}
	}
	if who.Role < Viewer {
		_ = conn.Close(websocket.StatusPolicyViolation, "no role")
		return
	}
	c := &wsClient{s: s, conn: conn, who: who, gen: cl.Gen, cancel: cancel, wake: make(chan struct{}, 1),
		channels: map[uint32]bool{}, instances: map[uint32]bool{}, pending: map[wsKey]wsValue{}}
	if cl.ExpiresAt != nil {
		c.exp = cl.ExpiresAt.Time
	}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	s.metrics.wsClients.Inc()
	var subs []string // Redis names this client holds
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		s.metrics.wsClients.Dec()
		_ = h.ref(context.WithoutCancel(ctx), subs, -1)
	}()

	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(ctx) })
	// The closer ends the connection once the client is dropped, with the reason in
	// the close frame. Reads do not use ctx: a cancelled read would close the
	// connection at once, without the frame.
	wg.Go(func() {
		<-ctx.Done()
		c.mu.Lock()
		reason := c.dropped
		c.mu.Unlock()
		switch {
		case strings.HasPrefix(reason, "slow"):
			_ = conn.CloseNow() // its socket does not drain; a close frame would wait too
		case reason == "closed":
			_ = conn.Close(websocket.StatusNormalClosure, "")
		case reason == "shutdown":
			_ = conn.Close(websocket.StatusGoingAway, "the gateway is stopping")
		default:
			_ = conn.Close(websocket.StatusPolicyViolation, reason)
		}
	})
	welcome, _ := json.Marshal(map[string]any{"type": "welcome", "user": who.User, "role": who.Role.String()})
	c.event(welcome)
	readCtx := context.WithoutCancel(ctx)
	for {
		_, b, err := conn.Read(readCtx)
		if err != nil {
			break
		}
		var req wsRequest
		if err := json.Unmarshal(b, &req); err != nil {
			c.errorf("bad message: %v", err)
			continue
		}
		switch req.Type {
		case "subscribe":
			subs = append(subs, c.subscribe(ctx, req)...)
		case "unsubscribe":
			subs = c.unsubscribe(ctx, req, subs)
		default:
			c.errorf("unknown message type %q (subscribe, unsubscribe)", req.Type)
		}
	}
	c.drop("", "closed")
	wg.Wait()
}

func (c *wsClient) errorf(format string, a ...any) {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": fmt.Sprintf(format, a...)})
	c.event(b)
}

// subscribe checks the request against the caller's role and the limits, takes
// the Redis subscriptions and sends a snapshot of what it covers.
func (c *wsClient) subscribe(ctx context.Context, req wsRequest) []string {
	for kind, set := range map[string]bool{"channels": len(req.Channels) > 0, "instances": len(req.Instances) > 0,
		"points": len(req.Points) > 0, "alarms": req.Alarms, "commands": req.Commands} {
		if set && c.who.Role < wsRoles[kind] {
			c.errorf("subscribing to %s needs the role %s; you are %s", kind, wsRoles[kind], c.who.Role)
			return nil
		}
	}
	names, err := subscriptionNames(req)
	if err != nil {
		c.errorf("%v", err)
		return nil
	}
	pats := make([]pattern, 0, len(req.Points))
	for _, ps := range req.Points {
		p, _ := parsePattern(ps)
		pats = append(pats, p)
	}
	c.mu.Lock()
	if len(c.channels)+len(req.Channels) > wsMaxChannels || len(c.instances)+len(req.Instances) > wsMaxInstances ||
		len(c.patterns)+len(pats) > wsMaxPatterns {
		c.mu.Unlock()
		c.errorf("too many subscriptions (channels ≤ %d, instances ≤ %d, point patterns ≤ %d)", wsMaxChannels, wsMaxInstances, wsMaxPatterns)
		return nil
	}
	for _, ch := range req.Channels {
		c.channels[ch] = true
	}
	for _, id := range req.Instances {
		c.instances[id] = true
	}
	c.patterns = append(c.patterns, pats...)
	c.alarms = c.alarms || req.Alarms
	c.commands = c.commands || req.Commands
	c.mu.Unlock()
	if req.Alarms {
		select {
		case c.s.hub.alarmWake <- struct{}{}:
		default:
		}
	}
	// Subscribe first, then read the hashes: a change between the two shows up in
	// both, never in neither (DESIGN §4: reload after subscribing).
	if err := c.s.hub.ref(ctx, names, 1); err != nil {
		c.errorf("subscribe failed: %v", err)
	}
	c.snapshot(ctx, req, pats)
	return names
}

func (c *wsClient) unsubscribe(ctx context.Context, req wsRequest, held []string) []string {
	names, err := subscriptionNames(req)
	if err != nil {
		c.errorf("%v", err)
		return held
	}
	c.mu.Lock()
	for _, ch := range req.Channels {
		delete(c.channels, ch)
	}
	for _, id := range req.Instances {
		delete(c.instances, id)
	}
	for _, ps := range req.Points {
		for i, p := range c.patterns {
			if patternString(p) == ps {
				c.patterns = append(c.patterns[:i], c.patterns[i+1:]...)
				break
			}
		}
	}
	if req.Alarms {
		c.alarms = false
	}
	if req.Commands {
		c.commands = false
	}
	c.mu.Unlock()
	var release []string
	for _, n := range names {
		for i, h := range held {
			if h == n {
				held = append(held[:i], held[i+1:]...)
				release = append(release, n)
				break
			}
		}
	}
	_ = c.s.hub.ref(ctx, release, -1)
	return held
}

func patternString(p pattern) string {
	ch, t, pt := "*", "*", "*"
	if p.channel != nil {
		ch = strconv.FormatUint(uint64(*p.channel), 10)
	}
	if len(p.types) == 1 {
		t = string(p.types[0])
	}
	if p.point != "" {
		pt = p.point
	}
	return ch + ":" + t + ":" + pt
}

// snapshot sends the current values of what a subscription covers.
func (c *wsClient) snapshot(ctx context.Context, req wsRequest, pats []pattern) {
	type fam struct {
		f     family
		proto wsValue
		ids   []string
	}
	var fams []fam
	for _, ch := range req.Channels {
		for _, t := range []point.Type{point.Telemetry, point.Signal} {
			fams = append(fams, fam{f: channelFamily(ch, t), proto: wsValue{Channel: ch, Type: string(t)}})
		}
	}
	for _, id := range req.Instances {
		fams = append(fams, fam{f: instanceFamily(id), proto: wsValue{Instance: id}})
	}
	for _, p := range pats {
		for i := range c.s.cfg.Site.Channels {
			ch := c.s.cfg.Site.Channels[i].ID
			if p.channel != nil && *p.channel != ch {
				continue
			}
			for _, t := range p.types {
				var ids []string
				if p.point != "" {
					ids = []string{p.point}
				}
				fams = append(fams, fam{f: channelFamily(ch, t), proto: wsValue{Channel: ch, Type: string(t)}, ids: ids})
			}
		}
	}
	if len(fams) == 0 {
		return
	}
	pipe := c.s.rdb.Pipeline()
	reads := make([]*familyRead, len(fams))
	for i, f := range fams {
		reads[i] = queueRead(ctx, pipe, f.f, f.ids)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		c.errorf("snapshot failed: the state store does not answer")
		return
	}
	var vals []wsValue
	for i, f := range fams {
		pv, err := reads[i].result(pointValue{})
		if err != nil {
			continue
		}
		for _, v := range pv {
			if v.Quality == "missing" {
				continue
			}
			w := f.proto
			w.Point, w.Value, w.Quality, w.TS = v.Point, v.Value, v.Quality, v.TS
			vals = append(vals, w)
		}
	}
	b, _ := json.Marshal(map[string]any{"type": "snapshot", "values": vals})
	c.event(b)
}

// writeLoop sends queued events and coalesced changes until the client is done.
func (c *wsClient) writeLoop(ctx context.Context) {
	set := c.s.set
	beat := time.NewTicker(set.wsHeartbeat)
	defer beat.Stop()
	// hold delays change frames to one per flush interval when one is set.
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	holding := false
	var lastChanges time.Time
	var buf []byte // reused: Write has sent the frame when it returns
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-hold.C:
			holding = false
		case <-beat.C:
			if reason := c.stillAllowed(ctx); reason != "" {
				c.drop("token", reason)
				return
			}
			b, _ := json.Marshal(map[string]any{"type": "heartbeat", "ts": time.Now().UnixMilli()})
			c.event(b)
		}
		sendChanges := !holding
		if wait := set.wsFlush - time.Since(lastChanges); sendChanges && set.wsFlush > 0 && wait > 0 {
			sendChanges, holding = false, true
			hold.Reset(wait)
		}
		c.mu.Lock()
		events := c.events
		c.events = nil
		var pending map[wsKey]wsValue
		if sendChanges && len(c.pending) > 0 {
			pending = c.pending
			c.pending = make(map[wsKey]wsValue, len(pending))
		}
		c.mu.Unlock()
		for _, e := range events {
			if !c.write(ctx, e) {
				return
			}
		}
		if len(pending) > 0 {
			buf = appendChanges(buf[:0], pending)
			if !c.write(ctx, buf) {
				return
			}
			lastChanges = time.Now()
		}
	}
}

// write sends one frame within the write timeout; a client that cannot take it
// is dropped. The timer drops it itself, so the reason is "slow" whatever the
// connection does next (a write cut short also ends the read loop, which would
// otherwise call it a normal close).
func (c *wsClient) write(ctx context.Context, b []byte) bool {
	slow := time.AfterFunc(c.s.set.wsWrite, func() {
		c.drop("slow", "slow consumer: a frame did not leave within "+c.s.set.wsWrite.String())
	})
	err := c.conn.Write(ctx, websocket.MessageText, b) // the drop cancels ctx, which aborts the write
	slow.Stop()
	if err != nil {
		return false
	}
	c.s.metrics.wsFrames.Inc()
	return true
}

// stillAllowed checks the token has not expired and the user not changed.
func (c *wsClient) stillAllowed(ctx context.Context) string {
	if !c.exp.IsZero() && c.s.tokens.now().After(c.exp) {
		return "token expired; reconnect with a fresh one"
	}
	u, ok, err := c.s.users.cached(ctx, c.who.User)
	if err == nil && (!ok || u.Gen != c.gen) {
		return "user changed or removed; reconnect"
	}
	return ""
}

// appendChanges encodes a changes frame by hand: it is the hot path of the push
// (one encoding per client and flush), and encoding/json's reflection costs
// several times more for the same bytes.
func appendChanges(b []byte, pending map[wsKey]wsValue) []byte {
	b = append(b, `{"type":"changes","values":[`...)
	first := true
	for _, v := range pending {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '{')
		if v.Instance != 0 {
			b = append(b, `"instance":`...)
			b = strconv.AppendUint(b, uint64(v.Instance), 10)
		} else {
			b = append(b, `"channel":`...)
			b = strconv.AppendUint(b, uint64(v.Channel), 10)
			b = append(b, `,"type":"`...)
			b = append(b, v.Type...)
			b = append(b, '"')
		}
		b = append(b, `,"point":`...)
		b = strconv.AppendUint(b, uint64(v.Point), 10)
		b = append(b, `,"value":`...)
		if v.Value == nil || math.IsNaN(*v.Value) || math.IsInf(*v.Value, 0) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, *v.Value, 'g', -1, 64)
		}
		b = append(b, `,"quality":`...)
		b = appendJSONString(b, v.Quality)
		if v.TS != 0 {
			b = append(b, `,"ts":`...)
			b = strconv.AppendInt(b, v.TS, 10)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string: quality names are plain words and
// are copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
