package voltsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/voltageems/voltage/shared/point"
)

// controlServer is the HTTP control API (README.md lists the endpoints). It binds
// in New so that its address is known before Run.
type controlServer struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

func listenControl(addr string, s *Sim, log *slog.Logger) (*controlServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("voltsim control API: listen on %s: %w", addr, err)
	}
	return &controlServer{
		ln:  ln,
		srv: &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 5 * time.Second},
		log: log,
	}, nil
}

func (c *controlServer) addr() string { return c.ln.Addr().String() }

// serve runs until ctx is done, then shuts down, letting requests in flight finish
// for up to 2 s.
func (c *controlServer) serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- c.srv.Serve(c.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("voltsim control API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.srv.Shutdown(sctx); err != nil {
		_ = c.srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("voltsim control API: %w", err)
	}
	return nil
}

func (c *controlServer) close() error {
	if err := c.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// faultJSON is a Fault on the wire.
type faultJSON struct {
	Mode          FaultMode `json:"mode"`
	Slave         *uint8    `json:"slave,omitempty"`
	ExceptionCode uint8     `json:"exception_code,omitempty"`
	DelayMS       int64     `json:"delay_ms,omitempty"`
}

type channelJSON struct {
	ChannelInfo
	Requests int         `json:"requests"`
	Writes   int         `json:"writes"`
	Faults   []faultJSON `json:"faults"`
}

func faultsJSON(fs []Fault) []faultJSON {
	out := make([]faultJSON, 0, len(fs))
	for _, f := range fs {
		out = append(out, faultJSON{Mode: f.Mode, Slave: f.Slave, ExceptionCode: f.ExceptionCode, DelayMS: f.Delay.Milliseconds()})
	}
	return out
}

// ControlHandler is the HTTP control API, for embedding it in another server.
func (s *Sim) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /channels", func(w http.ResponseWriter, _ *http.Request) {
		var out []channelJSON
		for _, ci := range s.Channels() {
			out = append(out, channelJSON{
				ChannelInfo: ci, Requests: len(s.Requests(ci.ID)), Writes: len(s.Writes(ci.ID)),
				Faults: faultsJSON(s.Faults(ci.ID)),
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /channels/{id}/points/{type}/{point}", func(w http.ResponseWriter, r *http.Request) {
		ch, t, id, err := pointPath(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		ps, err := s.Point(ch, t, id)
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, ps)
	})
	mux.HandleFunc("PUT /channels/{id}/points/{type}/{point}", func(w http.ResponseWriter, r *http.Request) {
		ch, t, id, err := pointPath(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		var body struct {
			Value *float64 `json:"value"`
		}
		if err := readJSON(r, &body); err != nil || body.Value == nil {
			writeError(w, http.StatusBadRequest, errors.Join(err, errors.New(`want {"value": <number>}`)))
			return
		}
		if _, err := s.Point(ch, t, id); err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		if err := s.SetValue(ch, t, id, *body.Value); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
		ps, _ := s.Point(ch, t, id)
		writeJSON(w, http.StatusOK, ps)
	})
	mux.HandleFunc("POST /channels/{id}/faults", func(w http.ResponseWriter, r *http.Request) {
		ch, err := channelPath(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		var body faultJSON
		if err := readJSON(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if _, ok := s.chans[ch]; !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("channel %d is not simulated", ch))
			return
		}
		f := Fault{Mode: body.Mode, Slave: body.Slave, ExceptionCode: body.ExceptionCode, Delay: time.Duration(body.DelayMS) * time.Millisecond}
		if err := s.SetFault(ch, f); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, faultsJSON(s.Faults(ch)))
	})
	mux.HandleFunc("GET /channels/{id}/writes", func(w http.ResponseWriter, r *http.Request) {
		if ch, ok := knownChannel(s, w, r); ok {
			writeJSON(w, http.StatusOK, nonNil(s.Writes(ch)))
		}
	})
	mux.HandleFunc("GET /channels/{id}/requests", func(w http.ResponseWriter, r *http.Request) {
		if ch, ok := knownChannel(s, w, r); ok {
			writeJSON(w, http.StatusOK, nonNil(s.Requests(ch)))
		}
	})
	mux.HandleFunc("DELETE /channels/{id}/requests", func(w http.ResponseWriter, r *http.Request) {
		if ch, ok := knownChannel(s, w, r); ok {
			s.ResetRequests(ch)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	return mux
}

func channelPath(r *http.Request) (uint32, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("channel id %q: want a number", r.PathValue("id"))
	}
	return uint32(id), nil
}

func knownChannel(s *Sim, w http.ResponseWriter, r *http.Request) (uint32, bool) {
	ch, err := channelPath(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return 0, false
	}
	if _, ok := s.chans[ch]; !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("channel %d is not simulated", ch))
		return 0, false
	}
	return ch, true
}

func pointPath(r *http.Request) (uint32, point.Type, point.ID, error) {
	ch, err := channelPath(r)
	if err != nil {
		return 0, 0, 0, err
	}
	t, err := point.ParseType(r.PathValue("type"))
	if err != nil {
		return 0, 0, 0, err
	}
	id, err := strconv.ParseUint(r.PathValue("point"), 10, 32)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("point id %q: want a number", r.PathValue("point"))
	}
	return ch, t, point.ID(id), nil
}

// readJSON decodes a small JSON body strictly: unknown fields and trailing data are
// errors, so a misspelt "exeption_code" does not silently fall back to a default.
func readJSON(r *http.Request, dst any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if dec.More() {
		return errors.New("request body: trailing data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
