package netsrv

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqtt311Link speaks MQTT 3.1.1 through paho.mqtt.golang (paho.golang is MQTT 5
// only). A publish is attempted only on an open connection and its token
// awaited, so a message is never queued inside the client where the forwarder
// cannot see whether it was delivered.
type mqtt311Link struct {
	linkState
	opts   mqttOptions
	client mqtt.Client
}

func newMQTT311(o mqttOptions) *mqtt311Link {
	// paho.mqtt.golang fixes the client id when the client is made, so a signed
	// identity (Aliyun: the timestamp is in the client id and in the signature) is
	// computed once and used for every connection, keeping the two consistent.
	id, user, pass := o.identity()
	o.identity = func() (string, string, string) { return id, user, pass }
	l := &mqtt311Link{opts: o}
	co := mqtt.NewClientOptions().
		AddBroker(o.broker.String()).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetKeepAlive(time.Duration(o.keepAlive) * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(false).
		SetCredentialsProvider(func() (string, string) {
			_, user, pass := o.identity()
			return user, pass
		}).
		SetOnConnectHandler(func(c mqtt.Client) {
			l.set(true, nil)
			o.log.Info("mqtt connected", "broker", o.broker.Redacted(), "protocol", MQTT311)
			for _, t := range o.subscribe {
				tok := c.Subscribe(t, 1, func(_ mqtt.Client, m mqtt.Message) {
					if o.onMessage != nil {
						o.onMessage(m.Topic(), m.Payload())
					}
				})
				go func() {
					if tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
						l.fail(fmt.Errorf("subscribe %s: %w", t, tok.Error()))
					}
				}()
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			l.set(false, fmt.Errorf("connection lost: %w", err))
			o.log.Warn("mqtt connection lost", "broker", o.broker.Redacted(), "err", err)
		}).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { l.set(false, nil) })
	if o.tls != nil {
		co.SetTLSConfig(o.tls)
	}
	l.client = mqtt.NewClient(co)
	return l
}

func (l *mqtt311Link) run(ctx context.Context) {
	tok := l.client.Connect() // retries on its own (SetConnectRetry)
	go func() {
		<-tok.Done()
		if tok.Error() != nil {
			l.set(false, tok.Error())
		}
	}()
	<-ctx.Done()
	l.client.Disconnect(500)
	l.set(false, nil)
}

func (l *mqtt311Link) publish(ctx context.Context, m Message) error {
	if !l.connected() || !l.client.IsConnectionOpen() {
		return errNotConnected
	}
	tok := l.client.Publish(m.Topic, m.QoS, m.Retain, m.Payload)
	timer := time.NewTimer(DefaultPublishWait)
	defer timer.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish %s: %w", m.Topic, err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("publish %s: no acknowledgement within %s", m.Topic, DefaultPublishWait)
	case <-ctx.Done():
		return ctx.Err()
	}
}
