package comsrv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/command"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/httpapi"
)

// Channel control on comsrv's internal API (the gateway forwards to it):
//
//	POST /channels/{id}/enable    written into channels.yaml, then applied
//	POST /channels/{id}/disable   likewise
//	POST /channels/{id}/restart   drops the link and starts the channel again
//
// Enabling and disabling change the site folder, the source of truth (DESIGN §3),
// so a restart of comsrv keeps the choice; the rest of the file is kept as written.
// Every change is recorded in audit:log with the user the gateway names.

func (s *server) handleControl(srv interface {
	Handle(pattern string, h http.Handler)
}) {
	srv.Handle("POST /channels/{id}/enable", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.setEnabled(w, r, true) }))
	srv.Handle("POST /channels/{id}/disable", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.setEnabled(w, r, false) }))
	srv.Handle("POST /channels/{id}/restart", http.HandlerFunc(s.restart))
}

// channelID reads the {id} of the path; it answers 404 itself when there is none.
func (s *server) channelID(w http.ResponseWriter, r *http.Request) (uint32, bool) {
	n, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err == nil {
		s.mu.Lock()
		_, ok := s.running[uint32(n)]
		s.mu.Unlock()
		if ok {
			return uint32(n), true
		}
	}
	httpapi.Problem(w, http.StatusNotFound, "No such channel", fmt.Sprintf("no channel %q in channels.yaml", r.PathValue("id")))
	return 0, false
}

func (s *server) setEnabled(w http.ResponseWriter, r *http.Request, on bool) {
	id, ok := s.channelID(w, r)
	if !ok {
		return
	}
	if s.cfg.ConfigDir == "" {
		httpapi.Problem(w, http.StatusConflict, "No config folder", "comsrv runs without a config folder; channels cannot be changed")
		return
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	path := config.ChannelsFile(s.cfg.ConfigDir)
	old, err := os.ReadFile(path)
	if err != nil {
		httpapi.Problem(w, http.StatusInternalServerError, "Cannot read channels.yaml", err.Error())
		return
	}
	changed, err := config.SetChannelEnabled(old, id, on)
	if err != nil {
		httpapi.Problem(w, http.StatusUnprocessableEntity, "Cannot edit channels.yaml", err.Error())
		return
	}
	if err := config.WriteFileAtomic(path, changed); err != nil {
		httpapi.Problem(w, http.StatusInternalServerError, "Cannot write channels.yaml", err.Error())
		return
	}
	if err := s.reload(s.runCtx); err != nil { // channels live in Run's context, not the request's
		// The folder is invalid with the change (or was already): put the file back
		// as it was, so disk and running state agree.
		if rerr := config.WriteFileAtomic(path, old); rerr != nil {
			s.log.Error("cannot restore channels.yaml after a refused change", "err", rerr)
		}
		httpapi.Problem(w, http.StatusUnprocessableEntity, "Change refused: the site folder does not load with it", err.Error())
		return
	}
	action := map[bool]string{true: "channel_enable", false: "channel_disable"}[on]
	s.audit(r, action, id)
	s.writeInfo(w, id)
}

func (s *server) restart(w http.ResponseWriter, r *http.Request) {
	id, ok := s.channelID(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	rc := s.running[id]
	if rc == nil || !rc.ch.Enabled {
		s.mu.Unlock()
		httpapi.Problem(w, http.StatusConflict, "Channel disabled", fmt.Sprintf("channel %d is disabled; enable it instead", id))
		return
	}
	drv, err := protocol.New(rc.ch, s.log.With("channel", id))
	if err != nil {
		s.mu.Unlock()
		httpapi.Problem(w, http.StatusUnprocessableEntity, "Cannot build the channel's driver", err.Error())
		return
	}
	s.log.Info("channel restart requested", "channel", id, "user", httpapi.User(r))
	rc.stop()
	s.running[id] = s.start(s.runCtx, rc.ch, drv, rc.fingerprint)
	s.mu.Unlock()
	s.audit(r, "channel_restart", id)
	s.writeInfo(w, id)
}

func (s *server) writeInfo(w http.ResponseWriter, id uint32) {
	for _, info := range s.channelInfos() {
		if info.ID == id {
			httpapi.WriteJSON(w, http.StatusOK, info)
			return
		}
	}
	httpapi.Problem(w, http.StatusNotFound, "No such channel", fmt.Sprintf("channel %d is gone", id))
}

// audit records a channel change in audit:log. Redis being away is logged; the
// change itself is already made.
func (s *server) audit(r *http.Request, action string, id uint32) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	err := s.rdb.XAdd(ctx, command.Audit(map[string]any{"ts": time.Now().UnixMilli(), "action": action, "channel": id,
		"user": httpapi.User(r), "source": "comsrv"})).Err()
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("cannot write audit:log", "action", action, "channel", id, "err", err)
	}
}
