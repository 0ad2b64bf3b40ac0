// Package subjects builds every NATS subject and stream name of DESIGN §6, the way
// shared/keyspace builds Redis keys: it is the only place in the code base where
// subject names are written, so the edge, the cloud hub and their tests cannot
// drift apart.
//
// Every subject starts with ems.{site}, so a site's leaf-node credentials can be
// limited to ems.{site}.> and one site can neither read nor command another. The
// functions do not check the site id: ids are checked once, with ValidSiteID, where
// they enter the system (site.yaml, cloud.yaml, an API call).
package subjects

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/voltageems/voltage/shared/point"
)

// Root is the first token of every subject.
const Root = "ems"

// UplinkStream is the JetStream stream on each edge (in the JetStream domain named
// after the site) that holds what the site sends up to the cloud.
const UplinkStream = "UPLINK"

// MaxSiteIDLen bounds a site id, which is also a JetStream domain and a server name.
const MaxSiteIDLen = 64

func site(id string) string { return Root + "." + id }

func num(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// SiteAll matches every subject of one site, ems.{site}.> (its permission scope).
func SiteAll(id string) string { return site(id) + ".>" }

// Up matches everything a site sends to the cloud, ems.{site}.up.>.
func Up(id string) string { return site(id) + ".up.>" }

// Down matches everything the cloud sends to a site, ems.{site}.down.>.
func Down(id string) string { return site(id) + ".down.>" }

// ChannelUp carries a channel's change batches (the JSON of the Redis pub/sub
// message), ems.{site}.up.comsrv.{ch}.{T|S}. Only telemetry and signals go up.
func ChannelUp(id string, channel uint32, t point.Type) string {
	return site(id) + ".up.comsrv." + num(channel) + "." + t.String()
}

// InstanceUp carries an instance's measurement batches, ems.{site}.up.inst.{id}.M.
func InstanceUp(id string, instance uint32) string {
	return site(id) + ".up.inst." + num(instance) + ".M"
}

// AlarmUp carries alarm events, ems.{site}.up.alarm.
func AlarmUp(id string) string { return site(id) + ".up.alarm" }

// StatusUp carries the site heartbeat (services, versions, channel states),
// ems.{site}.up.status.
func StatusUp(id string) string { return site(id) + ".up.status" }

// DownCommand is the request/reply subject of commands from the cloud,
// ems.{site}.down.cmd; the reply is the command result.
func DownCommand(id string) string { return site(id) + ".down.cmd" }

// ErrSiteID is wrapped by every error of ValidSiteID.
var ErrSiteID = errors.New("invalid site id")

// ValidSiteID checks that id can be one token of a NATS subject and a JetStream
// domain: 1 to MaxSiteIDLen ASCII letters, digits, '-' and '_' — no dots (token
// separators), no wildcards ('*', '>'), no spaces.
func ValidSiteID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrSiteID)
	}
	if len(id) > MaxSiteIDLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrSiteID, id, MaxSiteIDLen)
	}
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return fmt.Errorf("%w: %q has %q at byte %d; use only letters, digits, - and _", ErrSiteID, id, r, i)
		}
	}
	return nil
}
