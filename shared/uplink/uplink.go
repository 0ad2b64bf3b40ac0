// Package uplink is the wire contract between an edge site and the cloud hub
// (DESIGN §6): the messages that travel on the subjects of shared/subjects, their
// headers, and the stream every site keeps. The edge bridge writes these messages
// and the hub reads them; both import this package so neither can drift.
//
// Change batches (ems.{site}.up.comsrv.{ch}.{T|S}, ems.{site}.up.inst.{id}.M) carry
// the JSON of the Redis pub/sub message unchanged (statestore's encoding), so they
// have no type here. Every other message is defined below.
package uplink

import (
	"github.com/voltageems/voltage/shared/command"
)

// Message headers on everything the edge stores in its UPLINK stream.
const (
	// HeaderMsgID is JetStream's de-duplication header. The edge sets it to
	// MsgID(site, source, entry): a message re-published after an edge crash (between
	// the JetStream store and the Redis XACK) is stored once.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderKey names the Redis hash a change batch came from, e.g. "comsrv:1:T".
	HeaderKey = "Voltage-Key"
	// HeaderEntry is the Redis stream entry id the message was built from, so the
	// cloud can count, order and compare what arrived with what was produced.
	HeaderEntry = "Voltage-Entry"
)

// Sources of uplink messages, the middle part of a message id.
const (
	SourceChanges = "changes" // voltage:changes
	SourceAlarms  = "alarms"  // alarm:events
)

// MsgID is the de-duplication id of the message built from entry (a Redis stream
// entry id) of source on site: "{site}.{source}.{entry}".
func MsgID(site, source, entry string) string { return site + "." + source + "." + entry }

// Status is the site heartbeat on ems.{site}.up.status.
type Status struct {
	Site     string          `json:"site"`
	Name     string          `json:"name,omitempty"` // site.name of site.yaml
	TS       int64           `json:"ts"`             // Unix ms
	Version  string          `json:"version"`        // of the appliance
	Services []ServiceStatus `json:"services"`
	Channels []ChannelStatus `json:"channels"`
}

// ServiceStatus is one service of the site as its heartbeat in Redis shows it.
type ServiceStatus struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Ready   bool   `json:"ready"`
}

// ChannelStatus is one channel's link state (comsrv:{ch}:status).
type ChannelStatus struct {
	ID        uint32 `json:"id"`
	Name      string `json:"name,omitempty"`
	State     string `json:"state"` // connecting | up | down | disabled
	LastError string `json:"last_error,omitempty"`
}

// AlarmEvent is one alarm:events entry sent up on ems.{site}.up.alarm: the stream
// entry id and its fields as alarmsrv wrote them.
type AlarmEvent struct {
	Site   string            `json:"site"`
	ID     string            `json:"id"` // alarm:events entry id
	Fields map[string]string `json:"fields"`
}

// Command is a request on ems.{site}.down.cmd: either a channel point command
// (Channel, Type, Point) or an instance action (Instance, Action).
type Command struct {
	ID       string  `json:"id,omitempty"` // the cloud's id; the edge makes one when empty
	Channel  uint32  `json:"channel,omitempty"`
	Type     string  `json:"type,omitempty"` // C | A
	Point    uint32  `json:"point,omitempty"`
	Instance uint32  `json:"instance,omitempty"`
	Action   string  `json:"action,omitempty"`
	Value    float64 `json:"value"`
	User     string  `json:"user"`              // the cloud user, for the site's audit:log
	WaitMS   int64   `json:"wait_ms,omitempty"` // how long the edge waits for the outcome
}

// CommandReply is the reply to a Command: the command result as the site recorded
// it, or status "rejected" with the reason (not on the allow-list, invalid).
type CommandReply struct {
	Site   string         `json:"site"`
	Result command.Result `json:"result"`
}

// The site API proxy (ems.{site}.down.api): the cloud hub forwards a request of a
// cloud user to the site's gateway, and the edge answers with the gateway's
// answer. Each is one NATS message, the body as the payload and the rest in these
// headers; Authorization (the hub's delegation token), Content-Type, Accept and
// X-Request-Id travel as themselves.
const (
	APIHeaderMethod = "Voltage-Method" // request: GET, POST, PUT, PATCH or DELETE
	APIHeaderPath   = "Voltage-Path"   // request: the gateway path, e.g. /points
	APIHeaderQuery  = "Voltage-Query"  // request: the raw query, without '?'
	APIHeaderStatus = "Voltage-Status" // reply: the HTTP status
)

// APIMaxBody bounds a proxied request body and the reply body: 1 MiB (NATS'
// default max_payload) less room for the headers.
const APIMaxBody = 1<<20 - 16<<10
