// Package keyspace builds every Redis key and pub/sub channel name of DESIGN §4.
// It is the only place in the code base where key names are written; everything
// else calls these functions.
package keyspace

import (
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// Stream and channel names that are the same for every site.
const (
	Changes       = "voltage:changes" // durable change log (stream)
	Audit         = "audit:log"       // who did what (stream)
	CommandResult = "cmd:result"      // pub/sub channel of command results
	AlarmActive   = "alarm:active"    // hash
	AlarmEvents   = "alarm:events"    // stream
	InstanceNames = "inst:name:index" // hash name → id

	// CommandGroup is the consumer group comsrv reads command streams with.
	CommandGroup = "comsrv"
)

func ch(channel uint32) string { return strconv.FormatUint(uint64(channel), 10) }

// ChannelPoints is the hash of engineering values of one channel and type,
// e.g. comsrv:1:T. Its name is also the pub/sub channel of its change batches.
func ChannelPoints(channel uint32, t point.Type) string {
	return "comsrv:" + ch(channel) + ":" + t.String()
}

// ChannelTimestamps is the hash point_id → Unix ms of the sample.
func ChannelTimestamps(channel uint32, t point.Type) string {
	return ChannelPoints(channel, t) + ":ts"
}

// ChannelRaw is the hash point_id → raw device value.
func ChannelRaw(channel uint32, t point.Type) string {
	return ChannelPoints(channel, t) + ":raw"
}

// ChannelQuality is the hash point_id → quality, holding only points that are not good.
func ChannelQuality(channel uint32, t point.Type) string {
	return ChannelPoints(channel, t) + ":q"
}

// ChannelStatus is the hash of a channel's link state.
func ChannelStatus(channel uint32) string { return "comsrv:" + ch(channel) + ":status" }

// ChannelStatusPattern matches every channel status hash (for SCAN).
const ChannelStatusPattern = "comsrv:*:status"

// ChannelCommands is the command stream of a channel.
func ChannelCommands(channel uint32) string { return "comsrv:" + ch(channel) + ":cmd" }

// Command is the result hash of one command.
func Command(id string) string { return "cmd:" + id }

// InstanceKeyPrefix starts every key of an instance (inst:{id}:...). Point names
// in configuration files (netsrv's inst:5:M:2) use the same prefix.
const InstanceKeyPrefix = "inst:"

// InstanceMeasurements is the hash of an instance's measurements (also its pub/sub channel).
func InstanceMeasurements(id uint32) string { return InstanceKeyPrefix + ch(id) + ":M" }

// InstanceMeasurementTimestamps is the hash of measurement timestamps.
func InstanceMeasurementTimestamps(id uint32) string { return InstanceMeasurements(id) + ":ts" }

// InstanceActions is the hash of an instance's last commanded actions.
func InstanceActions(id uint32) string { return InstanceKeyPrefix + ch(id) + ":A" }

// InstanceName is the string key holding an instance's name.
func InstanceName(id uint32) string { return InstanceKeyPrefix + ch(id) + ":name" }

// RuleExecution is the hash of a rule's last execution.
func RuleExecution(id string) string { return "rule:" + id + ":exec" }

// ServiceHeartbeat is the heartbeat hash of one running service instance.
func ServiceHeartbeat(name, instance string) string { return "svc:" + name + ":" + instance }

// ServiceHeartbeatPattern matches every heartbeat hash (for SCAN).
const ServiceHeartbeatPattern = "svc:*"

// ParseServiceHeartbeat splits a heartbeat key into service name and instance.
func ParseServiceHeartbeat(key string) (name, instance string, ok bool) {
	rest, ok := strings.CutPrefix(key, "svc:")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ":")
}

// ChangeSource says which hash a voltage:changes entry (or a pub/sub message) is about.
type ChangeSource struct {
	Instance bool   // inst:{id}:{M|A}; false for comsrv:{ch}:{T|S|C|A}
	ID       uint32 // channel id or instance id
	// Family is the hash's last segment: T, S, C or A for a channel, M or A for an instance.
	Family string
}

// ParseChangeKey reads the "key" field of a voltage:changes entry: a channel point
// hash (comsrv:1:T) or an instance hash (inst:5:M). ok is false for anything else.
func ParseChangeKey(key string) (src ChangeSource, ok bool) {
	prefix, rest, found := strings.Cut(key, ":")
	if !found {
		return ChangeSource{}, false
	}
	idText, family, found := strings.Cut(rest, ":")
	if !found || idText == "" || (idText[0] == '0' && len(idText) > 1) || idText[0] == '+' {
		return ChangeSource{}, false
	}
	id, err := strconv.ParseUint(idText, 10, 32)
	if err != nil {
		return ChangeSource{}, false
	}
	src.ID = uint32(id)
	src.Family = family
	switch prefix {
	case "comsrv":
		switch family {
		case "T", "S", "C", "A":
			return src, true
		}
	case "inst":
		src.Instance = true
		switch family {
		case "M", "A":
			return src, true
		}
	}
	return ChangeSource{}, false
}
