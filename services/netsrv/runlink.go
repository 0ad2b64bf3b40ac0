package netsrv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/voltageems/voltage/shared/changefeed"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/spool"
)

// runningLink is one link's goroutines: connection, forwarder and downlink worker.
type runningLink struct {
	cfg         *LinkConfig
	fingerprint string
	link        link
	fwd         *forwarder
	spool       *spool.Spool
	cancel      context.CancelFunc
	done        sync.WaitGroup
}

func (rl *runningLink) stop() {
	rl.cancel()
	rl.done.Wait()
	_ = rl.spool.Close()
}

// downlinkRequest is one message received on a downlink topic.
type downlinkRequest struct {
	topic   string
	payload []byte
}

// maxConcurrentWrites bounds downlink commands waiting for their result at once.
const maxConcurrentWrites = 4

func (s *server) start(parent context.Context, spoolDir string, l *LinkConfig) (*runningLink, error) {
	log := s.log.With("link", l.Name, "type", l.Type)
	dir := filepath.Join(spoolDir, l.Name)
	sp, err := spool.Open(spool.Options{Dir: dir, MaxBytes: l.Spool.MaxBytes, MaxAge: time.Duration(l.Spool.MaxAgeS) * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	wmPath := filepath.Join(dir, "spooled-through")
	wm, err := recoverWatermark(sp, wmPath)
	if err != nil {
		sp.Close()
		return nil, fmt.Errorf("spool watermark: %w", err)
	}
	downlinks := make(chan downlinkRequest, 64)
	onMessage := func(topic string, payload []byte) {
		if isReplyTopic(l, topic) {
			return // our own reply, seen again through a wildcard subscription
		}
		select {
		case downlinks <- downlinkRequest{topic: topic, payload: append([]byte(nil), payload...)}:
		default:
			s.metrics.downlink.WithLabelValues(l.Name, "busy").Inc()
			log.Warn("downlink queue full; write dropped", "topic", topic)
		}
	}
	lk, err := s.newLink(l, log, onMessage)
	if err != nil {
		sp.Close()
		return nil, err
	}
	block := time.Second
	if l.WindowMS > 0 {
		block = min(block, time.Duration(l.WindowMS)*time.Millisecond)
	}
	fwd := &forwarder{
		cfg: l, log: log, spool: sp, link: lk, m: s.metrics,
		feed:    changefeed.New(s.rdb, changefeed.Options{Group: keyspace.NetsrvGroup(l.Name), Count: DefaultBatchEntries, Block: block}),
		enc:     &encoder{site: s.site, link: l.Name, cfg: l},
		sel:     newSelector(l),
		limiter: rate.NewLimiter(rate.Limit(l.ReplayRate), max(1, int(l.ReplayRate/10))),
		wmPath:  wmPath, watermark: wm,
		spoolAtEntries: l.Spool.AfterEntries,
	}
	if fwd.spoolAtEntries == 0 {
		fwd.spoolAtEntries = max(s.changesMaxLen/2, 1)
	}
	fwd.st.spoolDropped.Store(sp.Stats().Dropped)
	ctx, cancel := context.WithCancel(parent)
	rl := &runningLink{cfg: l, link: lk, fwd: fwd, spool: sp, cancel: cancel}
	wr := newWriter(s.rdb, l)
	rl.done.Add(3)
	go func() { defer rl.done.Done(); lk.run(ctx) }()
	go func() { defer rl.done.Done(); fwd.run(ctx) }()
	go func() { defer rl.done.Done(); s.serveDownlinks(ctx, l, lk, wr, downlinks, log) }()
	return rl, nil
}

// newLink builds the connection of a link type.
func (s *server) newLink(l *LinkConfig, log *slog.Logger, onMessage downlinkHandler) (link, error) {
	tlsCfg, err := tlsConfig(l.TLS)
	if err != nil {
		return nil, err
	}
	if l.Type == TypeHTTP {
		return newHTTPLink(l.HTTP, tlsCfg), nil
	}
	u, err := url.Parse(l.Broker)
	if err != nil {
		return nil, fmt.Errorf("broker %q: %w", l.Broker, err)
	}
	if !strings.HasPrefix(u.Scheme, "ssl") && !strings.HasPrefix(u.Scheme, "tls") && u.Scheme != "mqtts" {
		tlsCfg = nil
	}
	o := mqttOptions{broker: u, tls: tlsCfg, keepAlive: 30, log: log, onMessage: onMessage}
	if l.KeepAlive > 0 {
		o.keepAlive = uint16(min(l.KeepAlive, 65535))
	}
	switch l.Type {
	case TypeAWSIoT:
		thing := l.AWS.Thing
		o.identity = func() (string, string, string) { return thing, l.Username, l.Password }
	case TypeAliyun:
		a := l.Aliyun
		o.identity = func() (string, string, string) {
			c := AliyunSign(a.ProductKey, a.DeviceName, a.DeviceSecret, a.ClientID, s.now().UnixMilli())
			return c.ClientID, c.Username, c.Password
		}
		if a.Downlink == nil || *a.Downlink {
			o.subscribe = []string{AliyunPropertySetTopic(a.ProductKey, a.DeviceName)}
		}
	default:
		id := l.ClientID
		if id == "" {
			id = "netsrv-" + s.site + "-" + l.Name
		}
		o.identity = func() (string, string, string) { return id, l.Username, l.Password }
	}
	if l.Downlink != nil {
		o.subscribe = append(o.subscribe, l.Downlink.Topic)
	}
	if l.Protocol == MQTT311 {
		return newMQTT311(o), nil
	}
	return newMQTT5(o), nil
}

// serveDownlinks answers cloud writes, a few at a time.
func (s *server) serveDownlinks(ctx context.Context, l *LinkConfig, lk link, wr *writer, in <-chan downlinkRequest, log *slog.Logger) {
	sem := make(chan struct{}, maxConcurrentWrites)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-in:
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.answer(ctx, l, lk, wr, req, log)
			}()
		}
	}
}

func (s *server) answer(ctx context.Context, l *LinkConfig, lk link, wr *writer, req downlinkRequest, log *slog.Logger) {
	var reply Message
	var status string
	if l.Type == TypeAliyun {
		b := wr.handleAliyun(ctx, req.payload)
		var r struct {
			Code int `json:"code"`
		}
		_ = json.Unmarshal(b, &r)
		status = map[int]string{200: "ok", 460: "rejected"}[r.Code]
		if status == "" {
			status = "failed"
		}
		reply = Message{Topic: req.topic + "_reply", Payload: b, QoS: 1}
	} else {
		res := wr.handleGeneric(ctx, req.payload)
		status = string(res.Status)
		b, _ := json.Marshal(res)
		topic := req.topic + "/reply"
		if l.Downlink != nil && l.Downlink.ReplyTopic != "" {
			topic = l.Downlink.ReplyTopic
		}
		reply = Message{Topic: topic, Payload: b, QoS: 1}
	}
	s.metrics.downlink.WithLabelValues(l.Name, status).Inc()
	log.Info("downlink write", "topic", req.topic, "status", status)
	if ctx.Err() != nil {
		return
	}
	if err := lk.publish(ctx, reply); err != nil {
		log.Warn("downlink reply not delivered", "topic", reply.Topic, "err", err)
	}
}

// isReplyTopic reports whether topic is where the link sends downlink replies.
func isReplyTopic(l *LinkConfig, topic string) bool {
	if l.Type == TypeAliyun {
		return strings.HasSuffix(topic, "_reply")
	}
	if l.Downlink != nil && l.Downlink.ReplyTopic != "" {
		return topic == l.Downlink.ReplyTopic
	}
	return strings.HasSuffix(topic, "/reply")
}
