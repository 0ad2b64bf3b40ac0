// Package command is the command contract of DESIGN §5 as both sides see it: the
// fields of an entry in a channel's command stream, the result hash, and Submit /
// Wait for producers (API, rules, cloud, CLI). comsrv is the only consumer.
package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// Status of a command in cmd:{id}.
type Status string

const (
	Pending   Status = "pending"   // submitted, not yet taken by comsrv
	Executing Status = "executing" // comsrv is writing it to the device
	OK        Status = "ok"        // the device accepted it
	Failed    Status = "failed"    // the device or the link refused it
	Expired   Status = "expired"   // it arrived after its expiry; never sent
	Rejected  Status = "rejected"  // invalid (unknown point, read-only, out of range); never sent
)

// Final reports whether s is an outcome (the command will not change any more).
func (s Status) Final() bool {
	return s == OK || s == Failed || s == Expired || s == Rejected
}

// ResultTTL is how long cmd:{id} is kept.
const ResultTTL = 24 * time.Hour

// DefaultMaxAge is how long a command without an explicit expiry stays valid after
// it was submitted. It keeps a command queued during an outage from reaching a
// device minutes later, when it no longer means what the operator meant.
const DefaultMaxAge = 60 * time.Second

// Command is one entry of comsrv:{ch}:cmd.
type Command struct {
	ID      string     // unique id; the result lives in cmd:{ID}
	Channel uint32     // target channel
	Type    point.Type // C or A
	Point   point.ID
	Value   float64 // engineering value
	Source  string  // api, rule, cloud, cli, ...
	User    string  // who asked
	TS      int64   // Unix ms when submitted
	Expires int64   // Unix ms after which it must not be executed; 0 = TS + DefaultMaxAge
}

// Fields renders c as stream entry fields.
func (c Command) Fields() map[string]any {
	return map[string]any{
		"id": c.ID, "type": c.Type.String(), "point": strconv.FormatUint(uint64(c.Point), 10),
		"value": point.FormatValue(c.Value), "source": c.Source, "user": c.User,
		"ts": strconv.FormatInt(c.TS, 10), "expires": strconv.FormatInt(c.Expires, 10),
	}
}

// Parse reads a stream entry of channel ch. streamID is used as the command id when
// the entry has none. The error says which field is wrong.
func Parse(ch uint32, streamID string, f map[string]any) (Command, error) {
	c := Command{Channel: ch, ID: str(f["id"]), Source: str(f["source"]), User: str(f["user"])}
	if c.ID == "" {
		c.ID = streamID
	}
	var err error
	if c.Type, err = point.ParseType(str(f["type"])); err != nil {
		return c, fmt.Errorf("field type: %w", err)
	}
	p, err := strconv.ParseUint(str(f["point"]), 10, 32)
	if err != nil {
		return c, fmt.Errorf("field point: %q is not a point id", str(f["point"]))
	}
	c.Point = point.ID(p)
	if c.Value, err = strconv.ParseFloat(str(f["value"]), 64); err != nil || math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
		return c, fmt.Errorf("field value: %q is not a finite number", str(f["value"]))
	}
	if c.TS, err = optInt(f["ts"]); err != nil {
		return c, fmt.Errorf("field ts: %w", err)
	}
	if c.Expires, err = optInt(f["expires"]); err != nil {
		return c, fmt.Errorf("field expires: %w", err)
	}
	return c, nil
}

// Deadline is the Unix ms after which c must not run.
func (c Command) Deadline() int64 {
	if c.Expires > 0 {
		return c.Expires
	}
	if c.TS > 0 {
		return c.TS + DefaultMaxAge.Milliseconds()
	}
	return 0 // no time given at all: never expires
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func optInt(v any) (int64, error) {
	s := str(v)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Unix millisecond time", s)
	}
	return n, nil
}

// NewID returns a random command id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Submit records cmd:{id} as pending and appends the command to its channel's
// stream, in one transaction. It fills ID and TS when empty and returns the id.
func Submit(ctx context.Context, rdb redis.UniversalClient, c Command) (string, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	c, err := prepare(c)
	if err != nil {
		return "", err
	}
	pipe := rdb.TxPipeline()
	queue(ctx, pipe, c)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("submit command %s to channel %d: %w", c.ID, c.Channel, err)
	}
	return c.ID, nil
}

// ErrIDInUse is SubmitOnce's answer for an id that names a different command
// (another target, value or user) within ResultTTL.
var ErrIDInUse = errors.New("the command id is already in use for a different command")

// SubmitOnce is Submit of a command whose id the client chose, so that the client
// can send it again after a lost answer without running it twice. When cmd:{id}
// exists already (within ResultTTL), nothing is submitted and created is false;
// when that earlier command differs from c in channel, type, point, value or
// user, the error wraps ErrIDInUse.
func SubmitOnce(ctx context.Context, rdb redis.UniversalClient, c Command) (created bool, err error) {
	if c.ID == "" {
		return false, errors.New("submit once: the command has no id")
	}
	if c, err = prepare(c); err != nil {
		return false, err
	}
	key := keyspace.Command(c.ID)
	for range 3 { // a concurrent submission of the same id ends the watch; the next round sees it
		err = rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			if len(h) > 0 {
				created = false
				if h["channel"] != strconv.FormatUint(uint64(c.Channel), 10) || h["type"] != c.Type.String() ||
					h["point"] != strconv.FormatUint(uint64(c.Point), 10) || h["value"] != point.FormatValue(c.Value) || h["user"] != c.User {
					return fmt.Errorf("command %s: %w", c.ID, ErrIDInUse)
				}
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				queue(ctx, pipe, c)
				return nil
			})
			created = err == nil
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil && !errors.Is(err, ErrIDInUse) {
		return false, fmt.Errorf("submit command %s to channel %d: %w", c.ID, c.Channel, err)
	}
	return created, err
}

// prepare fills TS and checks what Submit and SubmitOnce accept.
func prepare(c Command) (Command, error) {
	if c.TS == 0 {
		c.TS = time.Now().UnixMilli()
	}
	if !c.Type.Writable() {
		return c, fmt.Errorf("command %s: point type %s is not writable (want C or A)", c.ID, c.Type)
	}
	if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
		return c, fmt.Errorf("command %s: value %v is not a finite number", c.ID, c.Value)
	}
	return c, nil
}

// queue adds the writes of a submission to pipe: cmd:{id} pending (with who
// asked, so SubmitOnce can tell a retry from a clash) and the stream entry.
func queue(ctx context.Context, pipe redis.Pipeliner, c Command) {
	pipe.HSet(ctx, keyspace.Command(c.ID), "status", string(Pending), "channel", c.Channel,
		"type", c.Type.String(), "point", c.Point, "value", point.FormatValue(c.Value), "ts", c.TS, "user", c.User)
	pipe.Expire(ctx, keyspace.Command(c.ID), ResultTTL)
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.ChannelCommands(c.Channel), Values: c.Fields()})
}

// Result is the outcome of a command, as stored in cmd:{id} and published on
// cmd:result.
type Result struct {
	ID      string `json:"id"`
	Channel uint32 `json:"channel"`
	Type    string `json:"type"`
	Point   uint32 `json:"point"`
	Status  Status `json:"status"`
	Error   string `json:"error,omitempty"`
	DoneTS  int64  `json:"done_ts,omitempty"`
}

// Get reads cmd:{id}. A missing command is an error wrapping redis.Nil.
func Get(ctx context.Context, rdb redis.UniversalClient, id string) (Result, error) {
	h, err := rdb.HGetAll(ctx, keyspace.Command(id)).Result()
	if err != nil {
		return Result{}, fmt.Errorf("read command %s: %w", id, err)
	}
	if len(h) == 0 {
		return Result{}, fmt.Errorf("command %s: %w", id, redis.Nil)
	}
	r := Result{ID: id, Type: h["type"], Status: Status(h["status"]), Error: h["error"]}
	ch, _ := strconv.ParseUint(h["channel"], 10, 32)
	p, _ := strconv.ParseUint(h["point"], 10, 32)
	r.Channel, r.Point = uint32(ch), uint32(p)
	r.DoneTS, _ = strconv.ParseInt(h["done_ts"], 10, 64)
	return r, nil
}

// Wait blocks until the command has a final status or ctx is done. It listens on
// cmd:result and re-reads the hash, so a result published before it subscribed is
// not missed.
func Wait(ctx context.Context, rdb redis.UniversalClient, id string) (Result, error) {
	sub := rdb.Subscribe(ctx, keyspace.CommandResult)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return Result{}, fmt.Errorf("wait for command %s: subscribe: %w", id, err)
	}
	msgs := sub.Channel()
	recheck := time.NewTicker(time.Second) // covers a dropped pub/sub message
	defer recheck.Stop()
	for {
		r, err := Get(ctx, rdb, id)
		if err != nil && !errors.Is(err, redis.Nil) {
			return r, err
		}
		if err == nil && r.Status.Final() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("wait for command %s: %w", id, ctx.Err())
		case m := <-msgs:
			var pub Result
			if m != nil && json.Unmarshal([]byte(m.Payload), &pub) == nil && pub.ID == id && pub.Status.Final() {
				return pub, nil
			}
		case <-recheck.C:
		}
	}
}
