package apigateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/config"
)

// maxConfigFile bounds a config file the API returns.
const maxConfigFile = 4 << 20

// configExtensions are the files of a site folder the API shows; anything else
// (credentials, keys) stays out of reach.
var configExtensions = []string{".yaml", ".yml", ".csv", ".dbc"}

// reloadable are the services POST /config/reload can reload.
var reloadable = []string{"comsrv", "modsrv", "rulesrv", "hissrv", "alarmsrv"}

type validateOutput struct {
	Body struct {
		Valid  bool     `json:"valid"`
		Errors []string `json:"errors" doc:"every problem, as file:line:col: message"`
	}
}

type reloadInput struct {
	Body struct {
		Services []string `json:"services,omitempty" maxItems:"5" doc:"services to reload (default all): comsrv, modsrv, rulesrv, hissrv, alarmsrv"`
	}
}

type reloadResult struct {
	Service string `json:"service"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

type reloadOutput struct {
	Body struct {
		Results []reloadResult `json:"results"`
	}
}

type configFileInput struct {
	Path string `query:"path" required:"true" maxLength:"256" example:"comsrv/channels.yaml" doc:"a file of the site folder, relative to it"`
}

type configFileOutput struct {
	ContentType string `header:"Content-Type"`
	Body        []byte
}

func (s *server) registerConfig(api huma.API) {
	op(s, api, Engineer, huma.Operation{
		OperationID: "validateConfig", Method: http.MethodPost, Path: "/config/validate", Tags: []string{"config"},
		Summary: "Validate the site folder as it is on disk, without applying it",
	}, s.validateConfig)
	op(s, api, Engineer, huma.Operation{
		OperationID: "reloadConfig", Method: http.MethodPost, Path: "/config/reload", Tags: []string{"config"},
		Summary:     "Make services reload the site folder",
		Description: "Each service validates before it applies; a refused reload keeps its running configuration and its reason is in the result.",
		Errors:      []int{http.StatusUnprocessableEntity},
	}, s.reloadConfig)
	op(s, api, Engineer, huma.Operation{
		OperationID: "getConfigFile", Method: http.MethodGet, Path: "/config/file", Tags: []string{"config"},
		Summary: "One file of the site folder (.yaml, .yml, .csv, .dbc)", Errors: []int{http.StatusBadRequest, http.StatusNotFound},
		Responses: map[string]*huma.Response{"200": {Description: "the file", Content: map[string]*huma.MediaType{"text/plain": {Schema: &huma.Schema{Type: "string"}}}}},
	}, s.configFile)
}

func (s *server) validateConfig(ctx context.Context, _ *struct{}) (*validateOutput, error) {
	out := &validateOutput{}
	out.Body.Errors = []string{}
	if _, err := config.Load(s.cfg.ConfigDir); err != nil {
		var le *config.LoadError
		if errors.As(err, &le) {
			for _, e := range le.Errors {
				out.Body.Errors = append(out.Body.Errors, e.Error())
			}
		} else {
			out.Body.Errors = append(out.Body.Errors, err.Error())
		}
	}
	if _, err := LoadSettings(s.cfg.ConfigDir); err != nil {
		out.Body.Errors = append(out.Body.Errors, err.Error())
	}
	out.Body.Valid = len(out.Body.Errors) == 0
	s.audit(ctx, "config_validated", caller(ctx).User, "valid", out.Body.Valid)
	return out, nil
}

func (s *server) reloadConfig(ctx context.Context, in *reloadInput) (*reloadOutput, error) {
	names := in.Body.Services
	if len(names) == 0 {
		names = reloadable
	}
	for _, n := range names {
		if !slices.Contains(reloadable, n) {
			return nil, huma.Error422UnprocessableEntity(fmt.Sprintf("services: %q is not one of %s", n, strings.Join(reloadable, ", ")))
		}
	}
	me := caller(ctx)
	out := &reloadOutput{}
	for _, n := range names {
		_, err := s.svc.call(ctx, n, http.MethodPost, "/reload", nil, nil, me.User)
		r := reloadResult{Service: n, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		out.Body.Results = append(out.Body.Results, r)
		s.audit(ctx, "config_reload", me.User, "service", n, "ok", r.OK, "error", r.Error)
	}
	return out, nil
}

// configFile reads a file inside the site folder. The path is checked twice: it
// must be local (no .., not absolute) and is opened through os.Root, which also
// refuses symbolic links that lead out of the folder.
func (s *server) configFile(ctx context.Context, in *configFileInput) (*configFileOutput, error) {
	p := in.Path
	if strings.Contains(p, "\\") || strings.ContainsRune(p, 0) || !isLocal(p) {
		return nil, huma.Error400BadRequest("path must be relative to the site folder, without ..")
	}
	if !slices.Contains(configExtensions, strings.ToLower(path.Ext(p))) {
		return nil, huma.Error400BadRequest("only .yaml, .yml, .csv and .dbc files are shown")
	}
	root, err := os.OpenRoot(s.cfg.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("open site folder: %w", err)
	}
	defer root.Close()
	f, err := root.Open(p)
	if err != nil {
		return nil, huma.Error404NotFound("no file " + p + " in the site folder")
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, huma.Error404NotFound("no file " + p + " in the site folder")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(b) > maxConfigFile {
		return nil, huma.Error400BadRequest("file is larger than 4 MiB")
	}
	return &configFileOutput{ContentType: "text/plain; charset=utf-8", Body: b}, nil
}

func isLocal(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "" {
			return false
		}
	}
	return true
}
