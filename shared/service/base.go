package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/redisx"
)

// Base is what every edge service sets up the same way: its Redis client, and its
// HTTP server with /healthz, /readyz (checking Redis), /metrics and POST /reload.
// A service opens a Base, adds its own handlers, ready checks and metrics to
// HTTP, starts its workers, and then calls Serve.
type Base struct {
	Name  string
	Log   *slog.Logger
	Redis *redis.Client
	HTTP  *obs.Server

	reloadReq chan chan error
	served    chan struct{} // closed when Serve returns: reload requests are no longer taken
}

// Open connects to the site's Redis as client name and prepares the HTTP server.
// A Redis that does not answer yet is logged, not fatal: the service starts and
// its ready check says so until Redis answers (DESIGN §11).
func Open(ctx context.Context, name string, site *config.Config, log *slog.Logger) (*Base, error) {
	if log == nil {
		log = slog.Default()
	}
	url := site.Site.Redis.URL
	rdb, err := redisx.Connect(ctx, url, redisx.WithClientName(name))
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", url, err)
	}
	if err := redisx.Ping(ctx, rdb); err != nil {
		log.Warn("redis is not reachable yet; starting anyway, working once it answers", "url", url, "err", err)
	}
	b := &Base{Name: name, Log: log, Redis: rdb, HTTP: obs.NewServer(log), reloadReq: make(chan chan error), served: make(chan struct{})}
	b.HTTP.AddReadyCheck("redis", func(ctx context.Context) error { return redisx.Ping(ctx, rdb) })
	return b, nil
}

// Close closes the Redis client.
func (b *Base) Close() error { return b.Redis.Close() }

// ReloadTimeout bounds how long POST /reload waits for the service to take the
// request (it is busy with a previous reload).
const ReloadTimeout = 30 * time.Second

// Serve runs the HTTP server on addr and the service's heartbeat until ctx is done
// (then it returns nil) or the server fails. bound, when set, receives the
// listener's address.
//
// Reloads — a signal on reload (SIGHUP) or POST /reload — call apply one at a
// time, on Serve's goroutine, so apply never runs concurrently with itself. A
// SIGHUP that apply refuses is logged and the running configuration is kept;
// POST /reload answers 200 {"status":"reloaded"} or a 422 problem naming why.
// With apply == nil the service does not reload: SIGHUP is logged, POST /reload
// answers 501.
func (b *Base) Serve(ctx context.Context, addr string, bound func(net.Addr), reload <-chan struct{}, apply func(context.Context) error) error {
	b.HTTP.Handle("POST /reload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.reloadHTTP(w, r, apply != nil)
	}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer close(b.served)
	var wg sync.WaitGroup
	httpErr := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); httpErr <- b.HTTP.Serve(ctx, addr, bound) }()
	go func() { defer wg.Done(); Heartbeat(ctx, b.Redis, b.Name, b.Log) }()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-httpErr:
			switch {
			case ctx.Err() != nil:
				return nil // stopping: the server ended because ctx is done
			case err != nil:
				return err
			}
			return errors.New("http server stopped")
		case <-reload:
			if apply == nil {
				b.Log.Warn("reload asked for, but " + b.Name + " reads its configuration at start only; restart it")
				continue
			}
			if err := apply(ctx); err != nil {
				b.Log.Error("reload refused; keeping the running configuration", "err", err)
			} else {
				b.Log.Info("configuration reloaded")
			}
		case reply := <-b.reloadReq:
			if apply == nil {
				reply <- errReloadUnsupported
				continue
			}
			err := apply(ctx)
			if err == nil {
				b.Log.Info("configuration reloaded")
			}
			reply <- err
		}
	}
}

var errReloadUnsupported = errors.New("this service reads its configuration at start only; restart it")

func (b *Base) reloadHTTP(w http.ResponseWriter, r *http.Request, supported bool) {
	if !supported {
		httpapi.Problem(w, http.StatusNotImplemented, "Reload not supported", errReloadUnsupported.Error())
		return
	}
	reply := make(chan error, 1)
	select {
	case b.reloadReq <- reply:
	case <-r.Context().Done():
		return
	case <-b.served:
		httpapi.Problem(w, http.StatusServiceUnavailable, "Stopping", b.Name+" is shutting down")
		return
	case <-time.After(ReloadTimeout):
		httpapi.Problem(w, http.StatusServiceUnavailable, "Busy", b.Name+" did not take the reload request")
		return
	}
	if err := <-reply; err != nil {
		httpapi.Problem(w, http.StatusUnprocessableEntity, "Reload refused; the running configuration is kept", err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// Sleep waits for d or until ctx is done, and reports whether the whole d passed
// (false: stop, ctx ended). It is the pause of every retry loop.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
