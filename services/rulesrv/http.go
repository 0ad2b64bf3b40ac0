package rulesrv

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/obs"
)

// maxBody bounds a rule sent to the API.
const maxBody = MaxRuleFileSize

func (s *server) routes(srv *obs.Server) {
	srv.Handle("GET /rules", http.HandlerFunc(s.listRules))
	srv.Handle("POST /rules", http.HandlerFunc(s.createRule))
	srv.Handle("GET /rules/{id}", http.HandlerFunc(s.getRule))
	srv.Handle("PUT /rules/{id}", http.HandlerFunc(s.putRule))
	srv.Handle("DELETE /rules/{id}", http.HandlerFunc(s.delRule))
	srv.Handle("POST /rules/{id}/enable", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.enable(w, r, true) }))
	srv.Handle("POST /rules/{id}/disable", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.enable(w, r, false) }))
	srv.Handle("POST /rules/{id}/dry-run", http.HandlerFunc(s.dryRun))
	srv.Handle("POST /dry-run", http.HandlerFunc(s.dryRunBody))
	srv.Handle("GET /rules/{id}/executions", http.HandlerFunc(s.executions))
	srv.Handle("GET /events", http.HandlerFunc(s.events))
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, title, detail string) {
	httpapi.Problem(w, status, title, detail)
}

// problemErr maps an error to its status.
func problemErr(w http.ResponseWriter, err error) {
	var le *config.LoadError
	var pe *config.PosError
	var bb badBody
	switch {
	case errors.As(err, &bb):
		problem(w, http.StatusBadRequest, "Bad body", err.Error())
	case errors.Is(err, errNotFound):
		problem(w, http.StatusNotFound, "No such rule", err.Error())
	case errors.Is(err, errExists):
		problem(w, http.StatusConflict, "Rule exists", "a rule with this id exists; PUT /rules/{id} replaces it")
	case errors.As(err, &le):
		list := make([]string, len(le.Errors))
		for i, e := range le.Errors {
			list[i] = e.Error()
		}
		httpapi.Problem(w, http.StatusUnprocessableEntity, "Invalid rule", err.Error(), map[string]any{"errors": list})
	case errors.As(err, &pe):
		problem(w, http.StatusUnprocessableEntity, "Invalid rule", err.Error())
	default:
		problem(w, http.StatusInternalServerError, "Cannot save the rule", err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

// RuleView is a rule as the API shows it.
type RuleView struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	Priority    int        `json:"priority"`
	File        string     `json:"file"`
	Status      RuleStatus `json:"status"`
	Definition  *RuleFile  `json:"definition,omitempty"`
	Execution   *Execution `json:"execution,omitempty"`
}

// Execution is rule:{id}:exec as the API shows it: the last evaluation and the
// outcome of its actions. The JSON-valued fields are decoded; numbers stay the
// decimal strings the hash holds. A field the hash does not hold is absent.
type Execution struct {
	TS            *string              `json:"ts,omitempty" doc:"Unix ms of the evaluation (decimal string)"`
	Result        *string              `json:"result,omitempty"`
	Error         *string              `json:"error,omitempty"`
	Cause         *string              `json:"cause,omitempty"`
	Variables     map[string]InputView `json:"variables,omitempty"`
	Path          []string             `json:"path,omitempty"`
	Actions       []PlannedAction      `json:"actions,omitempty"`
	State         *RecordedState       `json:"state,omitempty"`
	Outcome       []ActionOutcome      `json:"outcome,omitempty"`
	OutcomeStatus *string              `json:"outcome_status,omitempty"`
	OutcomeTS     *string              `json:"outcome_ts,omitempty" doc:"Unix ms (decimal string)"`
}

// RuleEvent is one entry of rule:events as the API shows it. Which fields an
// entry has depends on its kind: an evaluation (kind = its result) has reason,
// cause, inputs and path; an action outcome (kind action) fired_ts, of and
// outcome; an event action (kind event) name, message, of and inputs; a remote
// write (remote_override) and its restore (watchdog_restore) target and value.
// Numbers stay the decimal strings the stream holds.
type RuleEvent struct {
	ID           string               `json:"id" doc:"stream entry id"`
	Rule         string               `json:"rule"`
	TS           string               `json:"ts" doc:"Unix ms (decimal string)"`
	Kind         string               `json:"kind"`
	Reason       *string              `json:"reason,omitempty"`
	Cause        *string              `json:"cause,omitempty"`
	Inputs       map[string]InputView `json:"inputs,omitempty"`
	Path         []string             `json:"path,omitempty"`
	FiredTS      *string              `json:"fired_ts,omitempty"`
	Of           *string              `json:"of,omitempty"`
	Outcome      *ActionOutcome       `json:"outcome,omitempty"`
	Name         *string              `json:"name,omitempty"`
	Message      *string              `json:"message,omitempty"`
	Target       *string              `json:"target,omitempty"`
	Value        *string              `json:"value,omitempty"`
	User         *string              `json:"user,omitempty"`
	Source       *string              `json:"source,omitempty"`
	RestoreAfter *string              `json:"restore_after,omitempty"`
}

// RuleExecutions is the answer of GET /rules/{id}/executions.
type RuleExecutions struct {
	Events []RuleEvent `json:"events"`
	Last   Execution   `json:"last"`
}

func (s *server) view(e *engine, r *Rule) RuleView {
	st, _ := e.status(r.ID)
	return RuleView{ID: r.ID, Name: r.File.Name, Description: r.File.Description, Priority: r.Priority, File: r.Path, Status: st}
}

func (s *server) listRules(w http.ResponseWriter, _ *http.Request) {
	e, rs := s.engine()
	if e == nil {
		problem(w, http.StatusServiceUnavailable, "No rules", "rulesrv has not loaded its rules")
		return
	}
	out := make([]RuleView, 0, len(rs.List))
	for _, r := range rs.List {
		out = append(out, s.view(e, r))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getRule(w http.ResponseWriter, r *http.Request) {
	e, rs := s.engine()
	rule := (*Rule)(nil)
	if rs != nil {
		rule = rs.Rule(r.PathValue("id"))
	}
	if rule == nil {
		problem(w, http.StatusNotFound, "No such rule", "no rule "+strconv.Quote(r.PathValue("id")))
		return
	}
	v := s.view(e, rule)
	def := rule.File
	v.Definition = &def
	if exec, err := s.execution(r.Context(), rule.ID); err == nil && exec != nil {
		v.Execution = exec
	}
	writeJSON(w, http.StatusOK, v)
}

// execution reads rule:{id}:exec; nil when the rule has none yet.
func (s *server) execution(ctx context.Context, id string) (*Execution, error) {
	h, err := s.rdb.HGetAll(ctx, execKey(id)).Result()
	if err != nil || len(h) == 0 {
		return nil, err
	}
	x := &Execution{}
	f := fields[string](h)
	x.TS, x.Result, x.Error, x.Cause = f.str("ts"), f.str("result"), f.str("error"), f.str("cause")
	x.OutcomeStatus, x.OutcomeTS = f.str("outcome_status"), f.str("outcome_ts")
	f.decode("variables", &x.Variables)
	f.decode("path", &x.Path)
	f.decode("actions", &x.Actions)
	f.decode("state", &x.State)
	f.decode("outcome", &x.Outcome)
	return x, nil
}

// fields reads a Redis hash or stream entry: every value is a string, and some
// hold JSON (an undecodable one is left out).
type fields[V any] map[string]V

func (f fields[V]) str(k string) *string {
	v, ok := f[k]
	if !ok {
		return nil
	}
	s, ok := any(v).(string)
	if !ok {
		return nil
	}
	return &s
}

func (f fields[V]) decode(k string, dst any) {
	if s := f.str(k); s != nil {
		_ = json.Unmarshal([]byte(*s), dst)
	}
}

// ruleEvent reads one entry of rule:events.
func ruleEvent(id string, values map[string]any) RuleEvent {
	f := fields[any](values)
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	ev := RuleEvent{ID: id, Rule: val(f.str("rule")), TS: val(f.str("ts")), Kind: val(f.str("kind")),
		Reason: f.str("reason"), Cause: f.str("cause"), FiredTS: f.str("fired_ts"), Of: f.str("of"),
		Name: f.str("name"), Message: f.str("message"), Target: f.str("target"), Value: f.str("value"),
		User: f.str("user"), Source: f.str("source"), RestoreAfter: f.str("restore_after")}
	f.decode("inputs", &ev.Inputs)
	f.decode("path", &ev.Path)
	f.decode("outcome", &ev.Outcome)
	return ev
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "Body too large", err.Error())
		return nil, false
	}
	return b, true
}

func (s *server) createRule(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	src, err := normalise(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad body", err.Error())
		return
	}
	var head struct {
		ID string `yaml:"id"`
	}
	if err := config.GuardYAML(func() error { return yamlUnmarshalLoose(src, &head) }); err != nil || head.ID == "" {
		problem(w, http.StatusBadRequest, "Bad body", "the rule needs an id")
		return
	}
	s.save(w, r, head.ID, body, true)
}

func (s *server) putRule(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.save(w, r, r.PathValue("id"), body, false)
}

func (s *server) save(w http.ResponseWriter, r *http.Request, id string, body []byte, create bool) {
	rule, err := s.saveRule(id, body, create)
	if err != nil {
		problemErr(w, err)
		return
	}
	s.audit(r, map[bool]string{true: "rule_create", false: "rule_update"}[create], id)
	if err := s.reload(r.Context()); err != nil {
		problem(w, http.StatusUnprocessableEntity, "Rule saved, reload refused", err.Error())
		return
	}
	e, rs := s.engine()
	if nr := rs.Rule(id); nr != nil {
		rule = nr
	}
	status := http.StatusOK
	if create {
		status = http.StatusCreated
	}
	writeJSON(w, status, s.view(e, rule))
}

func (s *server) delRule(w http.ResponseWriter, r *http.Request) {
	if err := s.deleteRule(r.PathValue("id")); err != nil {
		problemErr(w, err)
		return
	}
	s.audit(r, "rule_delete", r.PathValue("id"))
	if err := s.reload(r.Context()); err != nil {
		problem(w, http.StatusUnprocessableEntity, "Rule deleted, reload refused", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) enable(w http.ResponseWriter, r *http.Request, on bool) {
	id := r.PathValue("id")
	if err := s.setEnabled(id, on); err != nil {
		problemErr(w, err)
		return
	}
	s.audit(r, map[bool]string{true: "rule_enable", false: "rule_disable"}[on], id)
	if err := s.reload(r.Context()); err != nil {
		problem(w, http.StatusUnprocessableEntity, "Rule saved, reload refused", err.Error())
		return
	}
	e, rs := s.engine()
	rule := rs.Rule(id)
	if rule == nil {
		problem(w, http.StatusNotFound, "No such rule", id)
		return
	}
	writeJSON(w, http.StatusOK, s.view(e, rule))
}

func (s *server) dryRun(w http.ResponseWriter, r *http.Request) {
	e, _ := s.engine()
	if e == nil {
		problem(w, http.StatusServiceUnavailable, "No rules", "rulesrv has not loaded its rules")
		return
	}
	ev, ok := e.dryRun(r.PathValue("id"))
	if !ok {
		problem(w, http.StatusNotFound, "No such rule", "no rule "+strconv.Quote(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

// dryRunBody evaluates a rule that is not saved (the body, YAML or JSON) against
// the live values, as a new rule: armed, nothing held.
func (s *server) dryRunBody(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	src, err := normalise(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad body", err.Error())
		return
	}
	_, rs := s.engine()
	if rs == nil {
		problem(w, http.StatusServiceUnavailable, "No rules", "rulesrv has not loaded its rules")
		return
	}
	var head struct {
		ID string `yaml:"id"`
	}
	_ = config.GuardYAML(func() error { return yamlUnmarshalLoose(src, &head) })
	if !ValidID(head.ID) {
		problem(w, http.StatusBadRequest, "Bad body", "the rule needs a valid id")
		return
	}
	rule, errs := ParseRule(filepath.Join(rs.Dir, head.ID+".yaml"), src, rs.Site, rs.Model)
	if len(errs) > 0 {
		problemErr(w, &config.LoadError{Dir: s.cfg.ConfigDir, Errors: errs})
		return
	}
	e, err := newEngine(&Rules{Dir: rs.Dir, Site: rs.Site, Model: rs.Model, List: []*Rule{rule}}, s.rdb, s.log, s.cfg.Now, s.metrics, s.exec, s.rec, s.arb)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "Invalid rule", err.Error())
		return
	}
	if err := e.resync(r.Context()); err != nil {
		problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
		return
	}
	ev, _ := e.dryRun(rule.ID)
	writeJSON(w, http.StatusOK, ev)
}

// countParam reads ?count= (default 50, at most 1000).
func countParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("count"))
	if err != nil || n <= 0 {
		return 50
	}
	return min(n, 1000)
}

func (s *server) executions(w http.ResponseWriter, r *http.Request) {
	_, rs := s.engine()
	id := r.PathValue("id")
	if rs == nil || rs.Rule(id) == nil {
		problem(w, http.StatusNotFound, "No such rule", "no rule "+strconv.Quote(id))
		return
	}
	exec, err := s.execution(r.Context(), id)
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
		return
	}
	evs, err := s.readEvents(r.Context(), id, countParam(r))
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
		return
	}
	out := RuleExecutions{Events: evs}
	if exec != nil {
		out.Last = *exec
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	evs, err := s.readEvents(r.Context(), r.URL.Query().Get("rule"), countParam(r))
	if err != nil {
		problem(w, http.StatusServiceUnavailable, "Redis unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, evs)
}

// readEvents returns the newest entries of rule:events (of one rule when rule is
// not ""), newest first, scanning at most 10,000 entries.
func (s *server) readEvents(ctx context.Context, rule string, count int) ([]RuleEvent, error) {
	out := []RuleEvent{}
	end := "+"
	for scanned := 0; scanned < 10_000 && len(out) < count; {
		msgs, err := s.rdb.XRevRangeN(ctx, keyspace.RuleEvents, end, "-", 500).Result()
		if err != nil && err != redis.Nil {
			return nil, err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if rule == "" || m.Values["rule"] == rule {
				out = append(out, ruleEvent(m.ID, m.Values))
				if len(out) == count {
					break
				}
			}
		}
		scanned += len(msgs)
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// audit records a change of the rules in audit:log, with the user the gateway
// names (DESIGN §11: everything an operator does). Redis being away is logged.
func (s *server) audit(r *http.Request, action, id string) {
	err := s.rdb.XAdd(context.WithoutCancel(r.Context()), command.Audit(map[string]any{
		"ts": time.Now().UnixMilli(), "action": action, "rule": id, "user": httpapi.User(r), "source": "api"})).Err()
	if err != nil {
		s.log.Warn("cannot write audit:log", "action", action, "rule", id, "err", err)
	}
}
