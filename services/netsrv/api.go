package netsrv

import (
	"net/http"
	"time"

	"github.com/voltageems/voltage/shared/httpapi"
)

// LinkStatus is one link in GET /links.
type LinkStatus struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Connected bool   `json:"connected"`
	Queued    struct {
		StreamLag     int64 `json:"stream_lag"`     // entries of voltage:changes not read yet (-1: unknown)
		StreamPending int64 `json:"stream_pending"` // read, not yet delivered or spooled
		Spool         int64 `json:"spool"`          // messages on disk
		SpoolBytes    int64 `json:"spool_bytes"`
	} `json:"queued"`
	SentMessages uint64     `json:"sent_messages"`
	SentPoints   uint64     `json:"sent_points"`
	Spooled      uint64     `json:"spooled_messages"`
	Dropped      uint64     `json:"dropped"`
	Errors       uint64     `json:"errors"`
	LastError    string     `json:"last_error,omitempty"`
	LastErrorAt  *time.Time `json:"last_error_at,omitempty"`
}

func (rl *runningLink) status() LinkStatus {
	st := &rl.fwd.st
	ls := LinkStatus{Name: rl.cfg.Name, Type: rl.cfg.Type}
	var linkErr string
	ls.Connected, linkErr = rl.link.state()
	ls.Queued.StreamLag = st.lag.Load()
	ls.Queued.StreamPending = st.pending.Load()
	ss := rl.spool.Stats()
	ls.Queued.Spool, ls.Queued.SpoolBytes = ss.Records, ss.Bytes
	ls.SentMessages, ls.SentPoints = st.sent.Load(), st.points.Load()
	ls.Spooled, ls.Dropped, ls.Errors = st.spooled.Load(), st.dropped.Load(), st.errors.Load()
	st.mu.Lock()
	ls.LastError = st.lastErr
	if !st.lastErrAt.IsZero() {
		t := st.lastErrAt.UTC()
		ls.LastErrorAt = &t
	}
	st.mu.Unlock()
	if ls.LastError == "" {
		ls.LastError = linkErr
	}
	return ls
}

func (s *server) listLinks(w http.ResponseWriter, _ *http.Request) {
	out := []LinkStatus{}
	for _, rl := range s.links() {
		out = append(out, rl.status())
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *server) getLink(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, rl := range s.links() {
		if rl.cfg.Name == name {
			httpapi.WriteJSON(w, http.StatusOK, rl.status())
			return
		}
	}
	httpapi.Problem(w, http.StatusNotFound, "Link not found", "no running link named "+name)
}
