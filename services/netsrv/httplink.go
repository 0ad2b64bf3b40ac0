package netsrv

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"
)

// httpLink posts each message as one request; a 2xx answer is the acknowledgement.
// It counts as connected until a request fails and again after one succeeds.
type httpLink struct {
	linkState
	cfg    *HTTP
	client *http.Client
}

func newHTTPLink(c *HTTP, tlsCfg *tls.Config) *httpLink {
	timeout := DefaultHTTPTimeout
	if c.TimeoutMS > 0 {
		timeout = time.Duration(c.TimeoutMS) * time.Millisecond
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	l := &httpLink{cfg: c, client: &http.Client{Timeout: timeout, Transport: tr}}
	l.up = true
	return l
}

func (l *httpLink) run(ctx context.Context) {
	<-ctx.Done()
	l.client.CloseIdleConnections()
}

// connected is always true for a webhook: every attempt is a probe, paced by the
// forwarder's backoff.
func (l *httpLink) connected() bool { return true }

func (l *httpLink) publish(ctx context.Context, m Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range l.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.set(false, err)
		return fmt.Errorf("post %s: %w", l.cfg.URL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("post %s: %s: %s", l.cfg.URL, resp.Status, bytes.TrimSpace(body))
		l.set(false, err)
		return err
	}
	l.set(true, nil)
	return nil
}
