package voltctl

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
	"github.com/voltageems/voltage/shared/redisx"
	"github.com/voltageems/voltage/shared/statestore"
)

var pointWatchSpec = &spec{
	path:    "point watch",
	args:    "CH TYPE",
	summary: "print the changes of a channel's points as they happen",
	detail: `
Subscribes to the channel's change notifications, prints the current values,
then one line per changed point until Ctrl-C or --count messages. After a lost
connection it subscribes again and prints the current values again, since
changes made meanwhile are not delivered. With --json, one JSON object per line.`,
	json: true,
	setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) int {
		var count int
		fs.IntVar(&count, "count", 0, "stop after this many change messages (0: until interrupted)")
		return func(ctx context.Context, e *env, args []string) int {
			if count < 0 {
				return e.usage("--count must not be negative")
			}
			return pointWatch(ctx, e, args, count)
		}
	},
}

// watchLine is one printed change (or current value, when Snapshot).
type watchLine struct {
	TS       int64      `json:"ts"`
	Channel  uint32     `json:"channel"`
	Type     point.Type `json:"type"`
	ID       point.ID   `json:"id"`
	Name     string     `json:"name"`
	Value    any        `json:"value"` // a number, or null
	Quality  string     `json:"quality"`
	Snapshot bool       `json:"snapshot,omitempty"` // read from the hash, not a change
}

func pointWatch(ctx context.Context, e *env, args []string, count int) int {
	ch, t, ids, err := pointArgs(args)
	if err != nil {
		return e.usage("%v", err)
	}
	if len(ids) > 0 {
		return e.usage("point watch takes no point ids; it prints every change of the type")
	}
	s := e.loadSite()
	if s.cfg == nil {
		e.note("names not shown: the site config %s did not load: %s", e.globals.configDir, configNote(s.cfgErr))
	}
	if code := e.connect(ctx, s); code != ExitOK {
		return code
	}
	defer s.close()
	w := &watcher{e: e, ch: ch, t: t, cc: s.channel(ch), nameWidth: 4}
	for _, p := range pointsOfChannel(w.cc, t) {
		w.nameWidth = max(w.nameWidth, utf8.RuneCountInString(p.Name)) // fmt pads by runes
	}

	sub := s.rdb.Subscribe(ctx, keyspace.ChannelPoints(ch, t))
	defer sub.Close()
	// go-redis resubscribes after a lost connection and delivers the confirmation
	// again; that is when the current values must be read again (DESIGN §4).
	msgs := sub.ChannelWithSubscriptions()
	if !e.json {
		fmt.Fprintf(e.stdout, "%-12s  %6s  %-*s  %14s  %s\n", "TIME", "ID", w.nameWidth, "NAME", "VALUE", "QUALITY")
	}
	// go-redis reconnects silently; a ping now and then tells the operator why
	// nothing is printed while Redis is away.
	health := time.NewTicker(5 * time.Second)
	defer health.Stop()
	lost := false
	subscribed, received := 0, 0
	for {
		select {
		case <-ctx.Done():
			return ExitOK
		case <-health.C:
			err := redisx.Ping(ctx, s.rdb)
			if err != nil && !lost && ctx.Err() == nil {
				e.note("lost Redis at %s (%v); waiting for it", redact(s.url), err)
			}
			lost = err != nil
		case m, ok := <-msgs:
			if !ok {
				return e.fail(ExitFailure, "subscription to channel %d %s closed", ch, t)
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				if subscribed++; subscribed > 1 {
					e.note("subscribed again after a lost connection; current values follow")
				}
				rows, err := readPoints(ctx, s.rdb, ch, t, nil, w.cc)
				if err != nil {
					e.note("current values not shown: %v", err)
					continue
				}
				for _, r := range rows {
					if r.Value != nil {
						w.print(watchLine{TS: r.TS, ID: r.ID, Value: r.Value, Quality: r.Quality, Snapshot: true})
					}
				}
			case *redis.Message:
				msg, err := statestore.DecodeMessage([]byte(m.Payload))
				if err != nil {
					e.note("skipped a message: %v", err)
					continue
				}
				w.printMessage(&msg)
				if received++; count > 0 && received >= count {
					return ExitOK
				}
			}
		}
	}
}

type watcher struct {
	e         *env
	ch        uint32
	t         point.Type
	cc        *config.Channel
	nameWidth int
}

func (w *watcher) printMessage(m *statestore.Message) {
	ids := make([]point.ID, 0, len(m.V))
	for f := range m.V {
		if id, err := strconv.ParseUint(f, 10, 32); err == nil {
			ids = append(ids, point.ID(id))
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		f := strconv.FormatUint(uint64(id), 10)
		w.print(watchLine{TS: m.PointTS(f), ID: id, Value: m.V[f], Quality: m.Quality(f).String()})
	}
}

func (w *watcher) print(l watchLine) {
	l.Channel, l.Type = w.ch, w.t
	if p := w.cc.Point(w.t, l.ID); p != nil {
		l.Name = p.Name
	}
	if w.e.json {
		b, err := json.Marshal(l)
		if err == nil {
			fmt.Fprintf(w.e.stdout, "%s\n", b)
		}
		return
	}
	var value string
	switch v := l.Value.(type) {
	case float64:
		value = point.FormatValue(v)
	case *json.Number:
		value = numText(v)
	}
	fmt.Fprintf(w.e.stdout, "%-12s  %6d  %-*s  %14s  %s\n", time.UnixMilli(l.TS).Format("15:04:05.000"), l.ID, w.nameWidth, orDash(l.Name), value, l.Quality)
}
