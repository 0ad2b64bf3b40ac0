package statestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DefaultChangesMaxLen is the approximate cap of the voltage:changes stream.
const DefaultChangesMaxLen = 1_000_000

// Writer writes batches of samples to Redis. It is safe for concurrent use; it
// holds no connection of its own, only the client it was given.
//
// Why MULTI/EXEC and not a Lua script: a script receives its data as ARGV, and
// Redis turns every argument into a Lua string and back into a Redis object
// before HSET sees it. Measured on Redis 7.0 (docs/benchmarks.md), that costs
// 2.3× the HSETs themselves, and the write path missed its budget of 1,000,000
// points/s; the same commands inside MULTI/EXEC are just as atomic, take the
// same single round trip, need no SCRIPT LOAD after a restart or failover, and
// leave Redis 1.5× the headroom.
type Writer struct {
	c      redis.UniversalClient
	maxLen any // the stream cap, boxed once
}

// NewWriter returns a Writer on c that caps the change stream at about
// changesMaxLen entries (≤ 0 means DefaultChangesMaxLen). c must be one Redis
// server (or a Sentinel-managed primary), as DESIGN §4 has it: a transaction
// spans keys of many hash slots, which Redis Cluster refuses.
func NewWriter(c redis.UniversalClient, changesMaxLen int64) *Writer {
	if changesMaxLen <= 0 {
		changesMaxLen = DefaultChangesMaxLen
	}
	return &Writer{c: c, maxLen: changesMaxLen}
}

// Write writes every batch — its hashes, its PUBLISH and its stream entry — in one
// MULTI/EXEC transaction sent in one network round trip, so no reader ever sees a
// batch half written and subscribers get the message only after the hashes hold
// its values. Batches without samples are skipped.
//
// An error from Redis for one command (say, a key of the wrong type) fails that
// command only, as in any Redis transaction; the error names the batch. After a
// lost connection the outcome is unknown: go-redis's own retry can then apply a
// Write twice, which leaves the hashes as they were and gives change consumers
// a duplicate message.
func (w *Writer) Write(ctx context.Context, batches ...Batch) error {
	return w.WriteWith(ctx, nil, batches...)
}

// WriteWith is Write with more commands in the same transaction: each element of
// extra is one Redis command's arguments (e.g. {"HSET", key, field, value}), sent
// after the batches. A service whose own state must change together with the
// values it writes — modsrv's integrators with the energy they produced — uses it
// so that a crash can never separate the two.
func (w *Writer) WriteWith(ctx context.Context, extra [][]any, batches ...Batch) error {
	var calls []*call
	defer func() {
		for _, c := range calls {
			c.release()
		}
	}()
	ncmds := 0
	for i := range batches {
		b := &batches[i]
		if len(b.Samples) == 0 {
			continue
		}
		if b.Key == "" {
			return fmt.Errorf("write state: batch %d of %d has no key", i+1, len(batches))
		}
		if calls == nil {
			calls = make([]*call, 0, len(batches)-i)
		}
		c := getCall()
		c.encode(b, w.maxLen)
		calls = append(calls, c)
		ncmds += len(c.cmds)
	}
	if len(calls) == 0 && len(extra) == 0 {
		return nil
	}

	pipe := w.c.TxPipeline()
	sent := make([]*redis.Cmd, 0, ncmds)
	for _, c := range calls {
		for _, args := range c.cmds {
			sent = append(sent, pipe.Do(ctx, args...))
		}
	}
	extraCmds := make([]*redis.Cmd, len(extra))
	for i, args := range extra {
		extraCmds[i] = pipe.Do(ctx, args...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	var serverErr redis.Error
	if !errors.As(err, &serverErr) {
		return fmt.Errorf("write state: %d batches: %w", len(calls), err)
	}
	// Redis answered; report each batch that had a failing command.
	var errs []error
	i := 0
	for _, c := range calls {
		var batchErr error
		for range c.cmds {
			if err := sent[i].Err(); err != nil && batchErr == nil {
				batchErr = fmt.Errorf("write state %s: %w", c.key, err)
			}
			i++
		}
		if batchErr != nil {
			errs = append(errs, batchErr)
		}
	}
	for i, c := range extraCmds {
		if err := c.Err(); err != nil {
			errs = append(errs, fmt.Errorf("write state: command %v: %w", extra[i][0], err))
		}
	}
	if len(errs) == 0 { // e.g. EXECABORT reported on EXEC alone
		return fmt.Errorf("write state: %d batches: %w", len(calls), err)
	}
	return errors.Join(errs...)
}
