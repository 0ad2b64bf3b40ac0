package statestore

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/redisx"
)

//go:embed script.lua
var script string

// scriptSHA is what SCRIPT LOAD answers for script; EVALSHA runs it by this name.
var scriptSHA = func() string {
	sum := sha1.Sum([]byte(script))
	return hex.EncodeToString(sum[:])
}()

// DefaultChangesMaxLen is the approximate cap of the voltage:changes stream.
const DefaultChangesMaxLen = 1_000_000

// Writer writes batches of samples to Redis. It is safe for concurrent use; it
// holds no connection of its own, only the client it was given.
type Writer struct {
	c      redis.UniversalClient
	sha    any    // scriptSHA, boxed once
	maxLen string // stream cap, formatted once
}

// NewWriter returns a Writer on c that caps the change stream at about
// changesMaxLen entries (≤ 0 means DefaultChangesMaxLen). It does not talk to
// Redis: the script is loaded by the first Write that finds it missing.
func NewWriter(c redis.UniversalClient, changesMaxLen int64) *Writer {
	if changesMaxLen <= 0 {
		changesMaxLen = DefaultChangesMaxLen
	}
	return &Writer{c: c, sha: scriptSHA, maxLen: strconv.FormatInt(changesMaxLen, 10)}
}

// Write writes every batch — its hashes, its PUBLISH and its stream entry,
// atomically per batch — in one network round trip. Batches without samples are
// skipped. When Redis has lost the script (a restart, a failover, SCRIPT FLUSH)
// Write loads it and retries the batches that were refused, which costs two more
// round trips once.
//
// On an error some batches may have been written and others not; the error names
// the ones that failed. Like any client retry after a lost reply, go-redis's own
// retry on a network error can write a batch twice: the hashes are unaffected and
// change consumers see a duplicate message.
func (w *Writer) Write(ctx context.Context, batches ...Batch) error {
	var calls []*call
	defer func() {
		for _, c := range calls {
			c.release()
		}
	}()
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
		c.encode(b, w.sha, w.maxLen)
		calls = append(calls, c)
	}
	if len(calls) == 0 {
		return nil
	}

	var errs []error
	pending := calls
	for attempt := 0; len(pending) > 0; attempt++ {
		refused, err := w.exec(ctx, pending)
		if err != nil {
			return err
		}
		errs = append(errs, refusedErrors(refused)...)
		pending = missingScript(refused)
		if len(pending) == 0 {
			break
		}
		if attempt > 0 {
			errs = append(errs, fmt.Errorf("write state: script still missing after SCRIPT LOAD (%d batches not written)", len(pending)))
			break
		}
		if err := w.load(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w (%d batches not written)", err, len(pending)))
			break
		}
	}
	return errors.Join(errs...)
}

// refusal is a batch the server answered with an error.
type refusal struct {
	call *call
	err  error
}

// exec sends calls in one pipeline. It returns the batches Redis refused, or an
// error when the round trip itself failed (connection, timeout, context).
func (w *Writer) exec(ctx context.Context, calls []*call) ([]refusal, error) {
	pipe := w.c.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = pipe.Do(ctx, c.args...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil, nil
	}
	var serverErr redis.Error
	if !errors.As(err, &serverErr) {
		return nil, fmt.Errorf("write state: %d batches: %w", len(calls), err)
	}
	var refused []refusal
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			refused = append(refused, refusal{call: calls[i], err: err})
		}
	}
	return refused, nil
}

// missingScript returns the refused calls that failed only because the script was
// not loaded; they did nothing and can be sent again.
func missingScript(refused []refusal) []*call {
	var calls []*call
	for _, r := range refused {
		if redisx.IsNoScript(r.err) {
			calls = append(calls, r.call)
		}
	}
	return calls
}

func refusedErrors(refused []refusal) []error {
	var errs []error
	for _, r := range refused {
		if !redisx.IsNoScript(r.err) {
			errs = append(errs, fmt.Errorf("write state %s: %w", r.call.key, r.err))
		}
	}
	return errs
}

// load sends the script with SCRIPT LOAD.
func (w *Writer) load(ctx context.Context) error {
	sha, err := w.c.ScriptLoad(ctx, script).Result()
	if err != nil {
		return fmt.Errorf("write state: load script: %w", err)
	}
	if sha != scriptSHA {
		return fmt.Errorf("write state: SCRIPT LOAD answered %s, want %s", sha, scriptSHA)
	}
	return nil
}
