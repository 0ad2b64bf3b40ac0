package alarmsrv

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/httpapi"
	"github.com/voltageems/voltage/shared/model"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

// HeaderUser is the header the gateway (which authenticates the caller and
// checks the role) sets to the user name, recorded as who acknowledged,
// shelved or changed rules. Without it the user is "anonymous".
const HeaderUser = httpapi.HeaderUser

// decodeBody reads an optional JSON body: an empty one leaves dst as it is.
func decodeBody(r *http.Request, dst any) error {
	if err := httpapi.ReadJSON(r, dst, maxBody); err != nil && !errors.Is(err, httpapi.ErrEmptyBody) {
		return err
	}
	return nil
}

const maxBody = 1 << 20

func (s *server) routes(srv *obs.Server) {
	srv.Handle("GET /alarms", http.HandlerFunc(s.listAlarms))
	srv.Handle("GET /alarms/{key}", http.HandlerFunc(s.getAlarm))
	srv.Handle("POST /alarms/{key}/ack", http.HandlerFunc(s.ackAlarm))
	srv.Handle("POST /alarms/{key}/shelve", http.HandlerFunc(s.shelveAlarm))
	srv.Handle("POST /alarms/{key}/unshelve", http.HandlerFunc(s.unshelveAlarm))
	srv.Handle("GET /history", http.HandlerFunc(s.history))
	srv.Handle("GET /history/counts", http.HandlerFunc(s.historyCounts))
	srv.Handle("GET /rules", http.HandlerFunc(s.listRules))
	srv.Handle("GET /rules/{id}", http.HandlerFunc(s.getRule))
	srv.Handle("POST /rules", http.HandlerFunc(s.createRule))
	srv.Handle("PUT /rules/{id}", http.HandlerFunc(s.putRule))
	srv.Handle("DELETE /rules/{id}", http.HandlerFunc(s.deleteRule))
}

// snapshot copies the alarms on the engine goroutine.
func (s *server) snapshot(r *http.Request) ([]Alarm, error) {
	var out []Alarm
	err := s.runner.do(r.Context(), func() {
		for _, a := range s.runner.ev.alarms {
			out = append(out, *a)
		}
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].RaisedAt > out[j].RaisedAt || (out[i].RaisedAt == out[j].RaisedAt && out[i].Key < out[j].Key)
	})
	return out, err
}

// GET /alarms?severity=&instance=&state=&shelved=
func (s *server) listAlarms(w http.ResponseWriter, r *http.Request) {
	all, err := s.snapshot(r)
	if err != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	q := r.URL.Query()
	out := []Alarm{}
	for _, a := range all {
		if v := q.Get("severity"); v != "" && a.Severity != v {
			continue
		}
		if v := q.Get("instance"); v != "" && a.Instance != v {
			continue
		}
		if v := q.Get("state"); v != "" && a.State() != v && !(v == "active" && a.Active) && !(v == "unacked" && !a.Acked) {
			continue
		}
		if v := q.Get("shelved"); v != "" && strconv.FormatBool(a.Shelved) != v {
			continue
		}
		out = append(out, a)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *server) getAlarm(w http.ResponseWriter, r *http.Request) {
	all, err := s.snapshot(r)
	if err != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	for _, a := range all {
		if a.Key == r.PathValue("key") {
			httpapi.WriteJSON(w, http.StatusOK, a)
			return
		}
	}
	httpapi.Problem(w, http.StatusNotFound, "", "no alarm "+r.PathValue("key"))
}

type actionBody struct {
	Comment  string `json:"comment"`
	Duration string `json:"duration"` // shelve only, e.g. "30m"
}

func (s *server) alarmAction(w http.ResponseWriter, r *http.Request, f func(key, user string, b actionBody, now time.Time) (*Alarm, error)) {
	var b actionBody
	if err := decodeBody(r, &b); err != nil {
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	if len(b.Comment) > 1024 {
		httpapi.Problem(w, http.StatusBadRequest, "", "comment longer than 1024 characters")
		return
	}
	var (
		a   *Alarm
		err error
	)
	if derr := s.runner.do(r.Context(), func() {
		a, err = f(r.PathValue("key"), httpapi.User(r), b, s.runner.now())
		s.runner.flush(r.Context())
	}); derr != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", derr.Error())
		return
	}
	var ce *conflictError
	var bad *badRequest
	switch {
	case errors.Is(err, errNotFound):
		httpapi.Problem(w, http.StatusNotFound, "", "no alarm "+r.PathValue("key"))
	case errors.As(err, &ce):
		httpapi.Problem(w, http.StatusConflict, "", err.Error())
	case errors.As(err, &bad):
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
	case err != nil:
		httpapi.Problem(w, http.StatusInternalServerError, "", err.Error())
	default:
		httpapi.WriteJSON(w, http.StatusOK, a)
	}
}

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// POST /alarms/{key}/ack {"comment": "..."}
func (s *server) ackAlarm(w http.ResponseWriter, r *http.Request) {
	s.alarmAction(w, r, func(key, u string, b actionBody, now time.Time) (*Alarm, error) {
		return s.runner.ev.ack(key, u, b.Comment, now)
	})
}

// MaxShelve bounds a shelve.
const MaxShelve = 7 * 24 * time.Hour

// POST /alarms/{key}/shelve {"duration": "30m", "comment": "..."}
func (s *server) shelveAlarm(w http.ResponseWriter, r *http.Request) {
	s.alarmAction(w, r, func(key, u string, b actionBody, now time.Time) (*Alarm, error) {
		d, err := time.ParseDuration(b.Duration)
		if err != nil || d <= 0 || d > MaxShelve {
			return nil, &badRequest{fmt.Sprintf("duration %q: want a positive duration up to %s, e.g. 30m", b.Duration, MaxShelve)}
		}
		return s.runner.ev.shelve(key, u, b.Comment, d, now)
	})
}

// POST /alarms/{key}/unshelve
func (s *server) unshelveAlarm(w http.ResponseWriter, r *http.Request) {
	s.alarmAction(w, r, func(key, u string, b actionBody, now time.Time) (*Alarm, error) {
		a := s.runner.ev.alarms[key]
		if a == nil {
			return nil, errNotFound
		}
		if !a.Shelved {
			return nil, errConflict("alarm %s is not shelved", key)
		}
		return s.runner.ev.unshelve(a, u, b.Comment, now), nil
	})
}

func parseHistoryQuery(r *http.Request) (HistoryQuery, error) {
	q := r.URL.Query()
	hq := HistoryQuery{Severity: q.Get("severity"), Instance: q.Get("instance"), Type: q.Get("type"), State: q.Get("state"), Key: q.Get("key")}
	parseTime := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.UnixMilli(ms), nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return t, fmt.Errorf("%s %q: want RFC 3339 or Unix milliseconds", name, v)
		}
		return t, nil
	}
	var err error
	if hq.From, err = parseTime("from"); err != nil {
		return hq, err
	}
	if hq.To, err = parseTime("to"); err != nil {
		return hq, err
	}
	if v := q.Get("limit"); v != "" {
		if hq.Limit, err = strconv.Atoi(v); err != nil || hq.Limit <= 0 {
			return hq, fmt.Errorf("limit %q: want a positive number", v)
		}
	}
	return hq, nil
}

// GET /history?from=&to=&severity=&instance=&type=&state=&key=&limit=&format=csv
func (s *server) history(w http.ResponseWriter, r *http.Request) {
	hq, err := parseHistoryQuery(r)
	if err != nil {
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	evs, err := History(r.Context(), s.rdb, hq)
	if err != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	if r.URL.Query().Get("format") == "csv" || strings.Contains(r.Header.Get("Accept"), "text/csv") {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="alarm-history.csv"`)
		_ = WriteCSV(w, evs)
		return
	}
	if evs == nil {
		evs = []Event{}
	}
	httpapi.WriteJSON(w, http.StatusOK, evs)
}

// GET /history/counts?from=&to=&instance=  → raised alarms per severity
func (s *server) historyCounts(w http.ResponseWriter, r *http.Request) {
	hq, err := parseHistoryQuery(r)
	if err != nil {
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	hq.Type, hq.Limit = EventRaised, maxHistory
	evs, err := History(r.Context(), s.rdb, hq)
	if err != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", err.Error())
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, Counts(evs))
}

func (s *server) listRules(w http.ResponseWriter, r *http.Request) {
	rs := s.rules.Load()
	out := rs.Doc.Alarms
	if out == nil {
		out = []RuleDoc{}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *server) getRule(w http.ResponseWriter, r *http.Request) {
	for _, d := range s.rules.Load().Doc.Alarms {
		if d.ID == r.PathValue("id") {
			httpapi.WriteJSON(w, http.StatusOK, d)
			return
		}
	}
	httpapi.Problem(w, http.StatusNotFound, "", "no alarm rule "+r.PathValue("id"))
}

func (s *server) createRule(w http.ResponseWriter, r *http.Request) {
	var d RuleDoc
	if err := decodeBody(r, &d); err != nil {
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	s.editRules(w, r, http.StatusCreated, func(doc *RulesDoc) error {
		if slices.ContainsFunc(doc.Alarms, func(x RuleDoc) bool { return x.ID == d.ID }) {
			return errConflict("alarm rule %s exists; PUT /rules/%s to change it", d.ID, d.ID)
		}
		doc.Alarms = append(doc.Alarms, d)
		return nil
	}, &d)
}

func (s *server) putRule(w http.ResponseWriter, r *http.Request) {
	var d RuleDoc
	if err := decodeBody(r, &d); err != nil {
		httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		return
	}
	id := r.PathValue("id")
	if d.ID == "" {
		d.ID = id
	}
	if d.ID != id {
		httpapi.Problem(w, http.StatusBadRequest, "", fmt.Sprintf("the body's id %q differs from the path's %q", d.ID, id))
		return
	}
	s.editRules(w, r, http.StatusOK, func(doc *RulesDoc) error {
		i := slices.IndexFunc(doc.Alarms, func(x RuleDoc) bool { return x.ID == id })
		if i < 0 {
			doc.Alarms = append(doc.Alarms, d)
		} else {
			doc.Alarms[i] = d
		}
		return nil
	}, &d)
}

func (s *server) deleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.editRules(w, r, http.StatusNoContent, func(doc *RulesDoc) error {
		i := slices.IndexFunc(doc.Alarms, func(x RuleDoc) bool { return x.ID == id })
		if i < 0 {
			return errNotFound
		}
		doc.Alarms = slices.Delete(doc.Alarms, i, i+1)
		return nil
	}, nil)
}

// editRules changes alarms.yaml: it reads the file, applies change, validates the
// result as a whole, writes it atomically (temp file + rename) and applies it.
// Comments of the file are not kept.
func (s *server) editRules(w http.ResponseWriter, r *http.Request, okStatus int, change func(*RulesDoc) error, result any) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	path := filepath.Join(s.dir, Folder, RulesFile)
	var doc RulesDoc
	if src, err := os.ReadFile(path); err == nil {
		if perr := config.DecodeStrict(path, src, &doc); perr != nil {
			httpapi.Problem(w, http.StatusConflict, "", "the rules file on disk is invalid: "+perr.Error())
			return
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		httpapi.Problem(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	if err := change(&doc); err != nil {
		var ce *conflictError
		switch {
		case errors.Is(err, errNotFound):
			httpapi.Problem(w, http.StatusNotFound, "", "no alarm rule "+r.PathValue("id"))
		case errors.As(err, &ce):
			httpapi.Problem(w, http.StatusConflict, "", err.Error())
		default:
			httpapi.Problem(w, http.StatusBadRequest, "", err.Error())
		}
		return
	}
	out, err := yaml.MarshalWithOptions(doc, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		httpapi.Problem(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	out = append([]byte("# Alarm rules and notification channels; reference: docs/alarmsrv.md.\n# Written by the alarmsrv rules API.\n"), out...)
	site, err := service.LoadConfig(s.dir)
	if err != nil {
		httpapi.Problem(w, http.StatusConflict, "", "the site folder is invalid: "+err.Error())
		return
	}
	m, err := model.Load(s.dir, site)
	if err != nil {
		httpapi.Problem(w, http.StatusConflict, "", "the thing model is invalid: "+err.Error())
		return
	}
	rs, err := ParseRules(path, out, site, m)
	if err != nil {
		var le *config.LoadError
		errs := []string{err.Error()}
		if errors.As(err, &le) {
			errs = errs[:0]
			for _, e := range le.Errors {
				errs = append(errs, e.Msg)
			}
		}
		httpapi.Problem(w, http.StatusUnprocessableEntity, "", "the rule is invalid", map[string]any{"errors": errs})
		return
	}
	if err := writeAtomic(path, out); err != nil {
		httpapi.Problem(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	if err := s.apply(r.Context(), rs); err != nil {
		httpapi.Problem(w, http.StatusServiceUnavailable, "", "written, not yet applied: "+err.Error())
		return
	}
	s.audit(r, "alarm_rules_changed", r.Method+" "+r.URL.Path)
	if okStatus == http.StatusNoContent {
		w.WriteHeader(okStatus)
		return
	}
	httpapi.WriteJSON(w, okStatus, result)
}

func (s *server) audit(r *http.Request, action, detail string) {
	_ = s.rdb.XAdd(r.Context(), command.Audit(map[string]any{"ts": time.Now().UnixMilli(), "action": action, "user": httpapi.User(r),
		"source": "alarmsrv", "detail": detail})).Err()
}

// writeAtomic writes a file through a temporary file in the same folder, synced
// and renamed over the old one, so a reader sees the old or the new file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".alarms-*.yaml")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// POST /reload
