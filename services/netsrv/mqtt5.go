package netsrv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// identity is what a link presents in CONNECT; Aliyun's changes with every
// attempt (the signature includes a timestamp).
type identity func() (clientID, username, password string)

// mqttOptions is what both MQTT implementations need.
type mqttOptions struct {
	broker    *url.URL
	tls       *tls.Config
	keepAlive uint16
	identity  identity
	subscribe []string // downlink topics, subscribed at QoS 1 on every connect
	onMessage downlinkHandler
	log       *slog.Logger
}

// mqtt5Link speaks MQTT 5 through paho.golang's autopaho, which reconnects with
// backoff. Sessions are clean: a publish interrupted by a disconnect fails and
// the forwarder sends it again itself, so the broker never gets both a session
// resend and a retry of the same message.
type mqtt5Link struct {
	linkState
	opts mqttOptions
	cm   atomic.Pointer[autopaho.ConnectionManager] // set once run started it
}

func newMQTT5(o mqttOptions) *mqtt5Link { return &mqtt5Link{opts: o} }

func (l *mqtt5Link) run(ctx context.Context) {
	o := l.opts
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{o.broker},
		TlsCfg:                        o.tls,
		KeepAlive:                     o.keepAlive,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         0,
		ReconnectBackoff:              autopaho.NewExponentialBackoff(200*time.Millisecond, 10*time.Second, time.Second, 2),
		ConnectTimeout:                10 * time.Second,
		ConnectPacketBuilder: func(c *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			id, user, pass := o.identity()
			c.ClientID = id
			c.CleanStart = true
			c.UsernameFlag, c.Username = user != "", user
			c.PasswordFlag, c.Password = pass != "", []byte(pass)
			return c, nil
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			l.set(true, nil)
			o.log.Info("mqtt connected", "broker", o.broker.Redacted())
			if len(o.subscribe) > 0 {
				go l.subscribe(ctx, cm)
			}
		},
		OnConnectionDown: func() bool {
			l.set(false, errors.New("connection lost"))
			o.log.Warn("mqtt connection lost", "broker", o.broker.Redacted())
			return true
		},
		OnConnectError: func(err error) {
			l.set(false, err)
			o.log.Debug("mqtt connect failed", "broker", o.broker.Redacted(), "err", err)
		},
		ClientConfig: paho.ClientConfig{
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					if o.onMessage != nil {
						o.onMessage(pr.Packet.Topic, pr.Packet.Payload)
					}
					return true, nil
				},
			},
			OnClientError: func(err error) { l.fail(err) },
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		l.set(false, fmt.Errorf("mqtt client: %w", err))
		return
	}
	l.cm.Store(cm)
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = cm.Disconnect(dctx)
	<-cm.Done()
	l.set(false, nil)
}

func (l *mqtt5Link) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) {
	subs := make([]paho.SubscribeOptions, len(l.opts.subscribe))
	for i, t := range l.opts.subscribe {
		subs[i] = paho.SubscribeOptions{Topic: t, QoS: 1}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		l.fail(fmt.Errorf("subscribe %v: %w", l.opts.subscribe, err))
		l.opts.log.Warn("mqtt subscribe failed", "topics", l.opts.subscribe, "err", err)
	}
}

func (l *mqtt5Link) publish(ctx context.Context, m Message) error {
	cm := l.cm.Load()
	if cm == nil || !l.connected() {
		return errNotConnected
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultPublishWait)
	defer cancel()
	resp, err := cm.Publish(pctx, &paho.Publish{QoS: m.QoS, Retain: m.Retain, Topic: m.Topic, Payload: m.Payload})
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Topic, err)
	}
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("publish %s: broker refused with reason %d", m.Topic, resp.ReasonCode)
	}
	return nil
}
