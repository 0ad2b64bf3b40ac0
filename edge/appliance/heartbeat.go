package appliance

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/subjects"
)

// DefaultHeartbeatInterval is how often the site heartbeat is published.
const DefaultHeartbeatInterval = 5 * time.Second

// Heartbeat is the JSON published on ems.{site}.up.status (DESIGN §6).
type Heartbeat struct {
	Site     string   `json:"site"`
	TS       int64    `json:"ts"` // Unix ms
	Version  string   `json:"version"`
	Services []string `json:"services"` // the services running in the appliance
}

// publishHeartbeats publishes the site heartbeat now and then every interval until
// ctx is done. It is a plain publish: a heartbeat that finds no link to the hub is
// dropped, as it should be — the next one says the same, and newer.
func publishHeartbeats(ctx context.Context, nc *nats.Conn, site string, services []string, interval time.Duration, log *slog.Logger) error {
	subject := subjects.StatusUp(site)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		b, err := json.Marshal(Heartbeat{Site: site, TS: time.Now().UnixMilli(), Version: service.Version, Services: services})
		if err == nil {
			err = nc.Publish(subject, b)
		}
		switch {
		case err != nil && !failing:
			log.Warn("site heartbeat not published", "subject", subject, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("site heartbeat published again", "subject", subject)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
