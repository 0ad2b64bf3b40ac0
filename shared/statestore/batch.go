// Package statestore is the write path of the realtime state store (DESIGN §4):
// it writes batches of samples to Redis — values, timestamps, raw values and
// qualities into their hashes, the change message onto the pub/sub channel and the
// voltage:changes stream — all the batches of one Write atomically, in one
// MULTI/EXEC transaction sent in one network round trip.
//
// It also decodes the change message, for subscribers and tests.
package statestore

import (
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// Batch is a set of samples of one hash family: one message, one stream entry.
type Batch struct {
	// Key is the value hash (point_id → value). It is also the pub/sub channel and
	// the change stream entry's "key", e.g. keyspace.ChannelPoints(1, point.Telemetry).
	Key string
	// TSKey is the hash point_id → Unix ms; "" = do not write timestamps.
	TSKey string
	// RawKey is the hash point_id → raw value; "" = do not write raw values.
	RawKey string
	// QualityKey is the hash point_id → quality, which holds only points that are
	// not good; "" = no quality hash (the message still carries qualities).
	QualityKey string
	// TS is the batch timestamp in Unix ms, the message's "ts". 0 means now.
	TS int64
	// Samples are written in order; a later sample of the same point wins. A
	// sample whose TS is 0 takes the batch's TS.
	Samples []point.Sample
}

// ChannelBatch is the batch for the samples of one channel and point type, with
// every key taken from the keyspace. Only telemetry and signals have a quality
// hash (DESIGN §4); control and adjustment qualities travel in the message only.
func ChannelBatch(channel uint32, t point.Type, ts int64, samples []point.Sample) Batch {
	b := Batch{
		Key:     keyspace.ChannelPoints(channel, t),
		TSKey:   keyspace.ChannelTimestamps(channel, t),
		RawKey:  keyspace.ChannelRaw(channel, t),
		TS:      ts,
		Samples: samples,
	}
	if t == point.Telemetry || t == point.Signal {
		b.QualityKey = keyspace.ChannelQuality(channel, t)
	}
	return b
}
