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
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// Root is the first token of every subject.
const Root = "ems"

// UplinkStream is the JetStream stream on each edge (in the JetStream domain named
// after the site) that holds what the site sends up to the cloud.
const UplinkStream = "UPLINK"

// JetStream key-value buckets of the cloud hub's API authentication (shared/auth's
// KVStore): users and the signing key; refresh tokens, their families and the
// login-throttling counters (records that expire).
const (
	AuthUsersBucket    = "voltage_auth_users"
	AuthSessionsBucket = "voltage_auth_sessions"
)

// CloudSitesBucket is the cloud hub's JetStream key-value bucket of its site
// registry: one key per site id (name, first and last heartbeat), so sites that
// registered by heartbeat and their first-seen time survive a hub restart.
const CloudSitesBucket = "voltage_cloud_sites"

// CloudAuditStream and CloudAudit are the cloud hub's audit trail (logins, user
// changes, commands to sites). The subject is hub-local: it is outside every
// ems.{site}.> scope, so no site's leaf-node credentials can read or write it.
const (
	CloudAuditStream = "CLOUD_AUDIT"
	CloudAudit       = "voltage.cloud.audit"
)

// CloudTrustBucket is the cloud hub's JetStream key-value bucket of its trust key:
// the Ed25519 key pair that signs the delegation tokens of the site API proxy,
// created at the hub's first start and kept.
const CloudTrustBucket = "voltage_cloud_trust"

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

// UplinkSubjects are the subjects a site's UPLINK stream stores: change batches
// (ems.{site}.up.comsrv.>, ems.{site}.up.inst.>) and alarm events
// (ems.{site}.up.alarm). The heartbeat ems.{site}.up.status is not stored: it is
// a plain publish, and a stale one replayed after a link cut would only mislead.
func UplinkSubjects(id string) []string {
	return []string{site(id) + ".up.comsrv.>", site(id) + ".up.inst.>", AlarmUp(id)}
}

// DownCommand is the request/reply subject of commands from the cloud,
// ems.{site}.down.cmd; the reply is the command result.
func DownCommand(id string) string { return site(id) + ".down.cmd" }

// DownAPI is the request/reply subject of the site API proxy, ems.{site}.down.api:
// the hub sends an HTTP request of a cloud user (with a delegation token the site's
// gateway checks) and the edge bridge replies with the gateway's answer. The reply
// subject is CommandReply's, ems.{site}.reply.{token}.
func DownAPI(id string) string { return site(id) + ".down.api" }

// StatusUpAll matches every site's heartbeat, ems.*.up.status: the cloud hub learns
// of a new site from its first heartbeat.
const StatusUpAll = Root + ".*.up.status"

// SiteFromSubject returns the site token of an ems.{site}.… subject, or "" when
// subject is not one.
func SiteFromSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, Root+".")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	return id
}

// Kinds of uplink subjects, as ParseUp names them.
const (
	KindChannel  = "comsrv" // ems.{site}.up.comsrv.{ch}.{T|S}
	KindInstance = "inst"   // ems.{site}.up.inst.{id}.M
	KindAlarm    = "alarm"  // ems.{site}.up.alarm
	KindStatus   = "status" // ems.{site}.up.status
)

// UpSubject is what an uplink subject names.
type UpSubject struct {
	Site   string
	Kind   string // KindChannel, KindInstance, KindAlarm or KindStatus
	ID     uint32 // channel or instance id
	Family string // T or S for channels, M for instances
}

// ParseUp reads an uplink subject built by ChannelUp, InstanceUp, AlarmUp or
// StatusUp; ok is false for anything else.
func ParseUp(subject string) (u UpSubject, ok bool) {
	tok := strings.Split(subject, ".")
	if len(tok) < 4 || tok[0] != Root || tok[2] != "up" || ValidSiteID(tok[1]) != nil {
		return UpSubject{}, false
	}
	u.Site, u.Kind = tok[1], tok[3]
	switch {
	case len(tok) == 4 && (u.Kind == KindAlarm || u.Kind == KindStatus):
		return u, true
	case len(tok) == 6 && (u.Kind == KindChannel || u.Kind == KindInstance):
		n, err := strconv.ParseUint(tok[4], 10, 32)
		if err != nil || tok[4] != num(uint32(n)) {
			return UpSubject{}, false
		}
		u.ID = uint32(n)
		u.Family = tok[5]
		if u.Kind == KindChannel && u.Family != point.Telemetry.String() && u.Family != point.Signal.String() ||
			u.Kind == KindInstance && u.Family != "M" {
			return UpSubject{}, false
		}
		return u, true
	}
	return UpSubject{}, false
}

// HubStream is the cloud hub's stream that sources site id's UPLINK stream across
// the leaf link, "SITE_{site}".
func HubStream(id string) string { return "SITE_" + id }

// SourceDeliver is the deliver prefix of the hub's sourcing consumer on the site's
// UPLINK, ems.{site}.sync: inside the site's scope, so the site's leaf-node
// credentials need no broader subject to carry the sourced messages.
func SourceDeliver(id string) string { return site(id) + ".sync" }

// CommandReplies matches the reply subjects the hub gives its commands to site id,
// ems.{site}.reply.>: inside the site's scope (a site replies only to its own
// commands) and outside ems.{site}.up.>, so a reply is never stored in UPLINK.
func CommandReplies(id string) string { return site(id) + ".reply.>" }

// CommandReply is the reply subject of one command to site id, ems.{site}.reply.{token}.
func CommandReply(id, token string) string { return site(id) + ".reply." + token }

// JSDomainAPI is the JetStream API prefix of site id's domain as seen across the
// leaf link, $JS.{site}.API.
func JSDomainAPI(id string) string { return "$JS." + id + ".API" }

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
