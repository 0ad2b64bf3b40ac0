// Package webhook delivers JSON notifications over HTTP POST: with a timeout per
// attempt, retries with capped exponential backoff and full jitter, and an
// HMAC-SHA256 signature so the receiver can check who sent the body and when.
//
// Every request carries these headers:
//
//	Content-Type:        application/json
//	X-Voltage-Timestamp: Unix seconds when the attempt was signed
//	X-Voltage-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>  (only with a secret)
//	X-Voltage-Delivery:  the caller's delivery id (the same on every retry), so a
//	                     receiver can drop a duplicate after a sender crash
//
// A receiver verifies with Verify. alarmsrv (alarm notifications) and rulesrv
// (a rule's webhook action) use it.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/voltageems/voltage/shared/backoff"
)

// Header names.
const (
	HeaderTimestamp = "X-Voltage-Timestamp"
	HeaderSignature = "X-Voltage-Signature"
	HeaderDelivery  = "X-Voltage-Delivery"
)

// Defaults of Config.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// Config says where and how to post.
type Config struct {
	URL string
	// Secret signs every request (X-Voltage-Signature); "" sends no signature.
	Secret string
	// Headers are added to every request (e.g. an Authorization the receiver wants).
	Headers map[string]string
	// Timeout bounds one attempt. Default DefaultTimeout.
	Timeout time.Duration
	// MaxAttempts is how many times Post tries before it gives up. Default
	// DefaultMaxAttempts; 1 means no retry.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: it doubles from
	// MinBackoff up to MaxBackoff, and a random part of it (full jitter) is taken.
	MinBackoff, MaxBackoff time.Duration
}

// Client posts to one URL. It is safe for concurrent use.
type Client struct {
	cfg Config
	hc  *http.Client
	now func() time.Time
}

// New returns a client for cfg, with defaults applied. hc nil means a client of
// its own (no cookie jar, no redirects followed for POST beyond Go's defaults).
func New(cfg Config, hc *http.Client) (*Client, error) {
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("webhook url %q: want http:// or https://", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, hc: hc, now: time.Now}, nil
}

// Error is a failed delivery: the last attempt's status (0 for a network
// error) and whether retrying later could help.
type Error struct {
	Attempts  int
	Status    int
	Permanent bool // the receiver refused the request (a 4xx other than 408/429)
	Err       error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("webhook: %d attempts, last answer %d: %v", e.Attempts, e.Status, e.Err)
	}
	return fmt.Sprintf("webhook: %d attempts: %v", e.Attempts, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// PostJSON marshals v and posts it (see Post).
func (c *Client) PostJSON(ctx context.Context, delivery string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("webhook: encode body: %w", err)
	}
	return c.Post(ctx, delivery, body)
}

// Post sends body (JSON) until a 2xx answer, a permanent refusal, MaxAttempts
// attempts or ctx's end. delivery identifies the message across retries and
// restarts ("" sends no X-Voltage-Delivery). Network errors, timeouts, 408, 429
// and 5xx are retried; any other 4xx is permanent. The error is an *Error.
func (c *Client) Post(ctx context.Context, delivery string, body []byte) error {
	var last *Error
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, c.backoff(attempt-1)); err != nil {
				last.Err = errors.Join(last.Err, err)
				return last
			}
		}
		status, err := c.attempt(ctx, delivery, body)
		if err == nil {
			return nil
		}
		last = &Error{Attempts: attempt, Status: status, Err: err,
			Permanent: status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests}
		if last.Permanent || ctx.Err() != nil {
			return last
		}
	}
	return last
}

func (c *Client) attempt(ctx context.Context, delivery string, body []byte) (int, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	ts := c.now().Unix()
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if c.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(c.cfg.Secret), ts, body))
	}
	if delivery != "" {
		req.Header.Set(HeaderDelivery, delivery)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(snippet)))
}

// backoff is the wait before retry n (1-based): full jitter over a capped
// exponential, so many senders retrying at once spread out.
func (c *Client) backoff(n int) time.Duration {
	return backoff.Policy{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}.Delay(n - 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sign returns the X-Voltage-Signature value of body signed at ts (Unix
// seconds): "sha256=" and the hex HMAC-SHA256 of "<ts>.<body>".
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature and that its timestamp is within maxSkew
// of now (replay protection). It is what a receiver calls with the two header
// values and the raw body.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: bad %s %q", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("webhook: timestamp %d is %v away from now", ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature)) {
		return errors.New("webhook: signature does not match")
	}
	return nil
}
