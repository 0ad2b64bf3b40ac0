package netsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/point"
)

// Write is the generic MQTT downlink request (see docs/netsrv.md):
//
//	{"id": "req-1", "point": "1:A:5", "value": 42.5}
//
// point is channel:type:point, a default name (c1_A_5), an instance action
// (inst:5:A:charge_power) or one of the link's aliases.
type Write struct {
	ID    string  `json:"id"`
	Point string  `json:"point"`
	Value float64 `json:"value"`
}

// WriteResult is the reply to a downlink write.
type WriteResult struct {
	ID        string         `json:"id"`
	Point     string         `json:"point,omitempty"`
	Status    command.Status `json:"status"` // ok, failed, expired, rejected
	Error     string         `json:"error,omitempty"`
	CommandID string         `json:"command_id,omitempty"`
}

// ParseWrite reads a generic downlink write. The id is returned even when the rest
// is wrong, so the reply can name it.
func ParseWrite(b []byte) (Write, error) {
	if len(b) > maxDownlinkBytes {
		return Write{}, fmt.Errorf("payload of %d bytes exceeds %d", len(b), maxDownlinkBytes)
	}
	var raw struct {
		ID    json.RawMessage `json:"id"`
		Point *string         `json:"point"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Write{}, fmt.Errorf("not a JSON write {\"point\",\"value\",\"id\"}: %w", err)
	}
	w := Write{ID: rawID(raw.ID)}
	if raw.Point == nil || *raw.Point == "" {
		return w, errors.New("point is missing")
	}
	w.Point = *raw.Point
	if len(raw.Value) == 0 {
		return w, errors.New("value is missing")
	}
	v, err := writeValue(raw.Value)
	if err != nil {
		return w, err
	}
	w.Value = v
	return w, nil
}

// writer turns cloud writes into commands (DESIGN §5) for the points on one
// link's allow-list.
type writer struct {
	rdb   redis.UniversalClient
	link  string
	rules []WriteRule
	names map[string]writeTarget // aliases
	wait  time.Duration
}

func newWriter(rdb redis.UniversalClient, l *LinkConfig) *writer {
	w := &writer{rdb: rdb, link: l.Name, rules: l.AllowWrite, names: map[string]writeTarget{}, wait: 30 * time.Second}
	if l.WriteTimeout > 0 {
		w.wait = time.Duration(l.WriteTimeout) * time.Second
	}
	for name, target := range l.Aliases {
		if wt, err := parseWriteTarget(target); err == nil {
			w.names[name] = wt
		}
	}
	return w
}

// resolve finds the point or action a downlink names.
func (w *writer) resolve(name string) (writeTarget, error) {
	if wt, ok := w.names[name]; ok {
		return wt, nil
	}
	return parseWriteTarget(name)
}

// allowed reports whether the link may write wt, and why not.
func (w *writer) allowed(wt writeTarget) error {
	if wt.action != "" {
		for _, r := range w.rules {
			if r.Instance != nil && *r.Instance == wt.instance && (len(r.Actions) == 0 || slices.Contains(r.Actions, wt.action)) {
				return nil
			}
		}
		return fmt.Errorf("%s is not on link %s's allow_write list", wt, w.link)
	}
	ref := wt.ref
	t, err := ref.channelType()
	if err != nil {
		return fmt.Errorf("%s is not a channel point; only channel control/adjustment points can be written", ref)
	}
	if !t.Writable() {
		return fmt.Errorf("%s is a %s point; only control (C) and adjustment (A) points can be written", ref, t.Name())
	}
	for _, r := range w.rules {
		if r.Channel == nil || *r.Channel != ref.Source {
			continue
		}
		if len(r.Types) > 0 && !slices.ContainsFunc(r.Types, func(s string) bool {
			pt, err := point.ParseType(s)
			return err == nil && pt == t
		}) {
			continue
		}
		if len(r.Points) > 0 && !slices.Contains(r.Points, ref.Point) {
			continue
		}
		return nil
	}
	return fmt.Errorf("%s is not on link %s's allow_write list", ref, w.link)
}

// execute runs one write through the command path and returns its outcome.
// Points not on the allow-list are rejected without submitting anything.
func (w *writer) execute(ctx context.Context, id, name string, value float64) WriteResult {
	res := WriteResult{ID: id, Point: name}
	wt, err := w.resolve(name)
	if err == nil {
		err = w.allowed(wt)
	}
	if err != nil {
		res.Status, res.Error = command.Rejected, err.Error()
		return res
	}
	var cid string
	if wt.action != "" {
		cid, err = command.SubmitAction(ctx, w.rdb, command.Action{
			Instance: wt.instance, Action: wt.action, Value: value, Source: "cloud", User: "netsrv:" + w.link,
		})
	} else {
		t, _ := wt.ref.channelType()
		cid, err = command.Submit(ctx, w.rdb, command.Command{
			Channel: wt.ref.Source, Type: t, Point: wt.ref.Point, Value: value,
			Source: "cloud", User: "netsrv:" + w.link,
		})
	}
	if err != nil {
		res.Status, res.Error = command.Failed, fmt.Sprintf("submit command: %v", err)
		return res
	}
	res.CommandID = cid
	wctx, cancel := context.WithTimeout(ctx, w.wait)
	defer cancel()
	r, err := command.Wait(wctx, w.rdb, cid)
	if err != nil {
		res.Status, res.Error = command.Pending, fmt.Sprintf("no result within %s: %v", w.wait, err)
		return res
	}
	res.Status, res.Error = r.Status, r.Error
	return res
}

// handleGeneric answers one generic MQTT downlink payload.
func (w *writer) handleGeneric(ctx context.Context, payload []byte) WriteResult {
	wr, err := ParseWrite(payload)
	if err != nil {
		return WriteResult{ID: wr.ID, Point: wr.Point, Status: command.Rejected, Error: "malformed write: " + err.Error()}
	}
	return w.execute(ctx, wr.ID, wr.Point, wr.Value)
}

// handleAliyun answers one Alink property set: 200 when every property was set;
// 460 (request parameter error) for a malformed or refused request, nothing
// submitted; 500 when a command failed. data lists each property's outcome.
func (w *writer) handleAliyun(ctx context.Context, payload []byte) []byte {
	id, writes, err := ParseAliyunPropertySet(payload)
	if err != nil {
		return aliyunReply(id, 460, "malformed property set: "+err.Error(), nil)
	}
	// Refuse the whole set when any property is not writable, before anything runs.
	for _, nw := range writes {
		ref, err := w.resolve(nw.Name)
		if err == nil {
			err = w.allowed(ref)
		}
		if err != nil {
			return aliyunReply(id, 460, "property "+nw.Name+" rejected: "+err.Error(), nil)
		}
	}
	data := map[string]WriteResult{}
	code, msg := 200, "success"
	for _, nw := range writes {
		r := w.execute(ctx, id, nw.Name, nw.Value)
		data[nw.Name] = r
		if r.Status != command.OK && code == 200 {
			code, msg = 500, fmt.Sprintf("property %s: %s: %s", nw.Name, r.Status, r.Error)
		}
	}
	return aliyunReply(id, code, msg, data)
}
