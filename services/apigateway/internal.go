package apigateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/httpapi"
)

// maxInternalAnswer bounds what the gateway reads from an internal service.
const maxInternalAnswer = 64 << 20

// internalServices calls the site's internal HTTP APIs (loopback) for the user a
// request acts for.
type internalServices struct {
	base   map[string]string
	client *http.Client
}

func newInternalServices(site *config.Config, override map[string]string) *internalServices {
	m := map[string]string{}
	for _, name := range []string{"comsrv", "modsrv", "rulesrv", "hissrv", "alarmsrv"} {
		if u, ok := override[name]; ok {
			m[name] = u
		} else if site != nil {
			m[name] = internalAddr(&site.Site, name)
		}
	}
	return &internalServices{base: m, client: &http.Client{Timeout: 30 * time.Second}}
}

// upstream is an internal service's answer.
type upstream struct {
	Status      int
	ContentType string
	Body        []byte
}

// call sends a request to service; a non-2xx answer becomes a huma error with the
// service's detail, so the public answer is always problem+json.
func (c *internalServices) call(ctx context.Context, service, method, path string, query url.Values, body any, user string) (upstream, error) {
	base, ok := c.base[service]
	if !ok {
		return upstream{}, huma.Error502BadGateway(service + " is not configured")
	}
	u := base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return upstream{}, fmt.Errorf("encode request to %s: %w", service, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return upstream{}, fmt.Errorf("request to %s: %w", service, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set(httpapi.HeaderUser, user)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return upstream{}, huma.Error502BadGateway(service + " is not reachable")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxInternalAnswer))
	if err != nil {
		return upstream{}, huma.Error502BadGateway("reading the answer of " + service + " failed")
	}
	up := upstream{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: b}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return up, nil
	}
	return up, upstreamError(service, resp.StatusCode, b)
}

// upstreamError maps an internal service's error answer to the public one: client
// errors keep their status and detail, server errors become 502.
func upstreamError(service string, status int, body []byte) error {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(body, &p)
	msg := strings.TrimSpace(p.Detail)
	if msg == "" {
		msg = strings.TrimSpace(p.Error)
	}
	if msg == "" {
		msg = strings.TrimSpace(p.Title)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	if status >= 500 || status < 400 {
		return huma.Error502BadGateway(fmt.Sprintf("%s answered %d: %s", service, status, msg))
	}
	return huma.NewError(status, msg)
}

// getJSON calls service and returns its JSON answer as it is.
func (c *internalServices) getJSON(ctx context.Context, service, path string, query url.Values, user string) (json.RawMessage, error) {
	up, err := c.call(ctx, service, http.MethodGet, path, query, nil, user)
	if err != nil {
		return nil, err
	}
	if !json.Valid(up.Body) {
		return nil, huma.Error502BadGateway(service + " answered something that is not JSON")
	}
	return up.Body, nil
}
