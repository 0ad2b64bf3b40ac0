package rulesrv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/goccy/go-yaml"

	"github.com/voltageems/voltage/shared/config"
)

// The rule files are the source of truth: the API writes them (validated first,
// then a temporary file renamed over the old one, so a crash never leaves half
// a file) and reloads.

// badBody is a request body that is not a rule document at all (400).
type badBody struct{ error }

func (b badBody) Unwrap() error { return b.error }

// errNotFound and errExists are the API's 404 and 409.
var (
	errNotFound = errors.New("no such rule")
	errExists   = errors.New("rule exists")
)

// rulePath is the file of rule id: the existing one (.yaml or .yml), else id.yaml.
func rulePath(dir, id string) (string, bool) {
	for _, ext := range []string{".yaml", ".yml"} {
		p := filepath.Join(dir, id+ext)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return filepath.Join(dir, id+".yaml"), false
}

// normalise turns a request body (YAML, or JSON, which is YAML too) into the
// bytes of a rule file: JSON is rewritten as YAML so files stay readable.
func normalise(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: send the rule as YAML or JSON")
	}
	if trimmed[0] != '{' {
		return body, nil
	}
	var f RuleFile
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("JSON body: %w", err)
	}
	for i := range f.Actions {
		fixNumbers(&f.Actions[i])
	}
	for i := range f.OnReset {
		fixNumbers(&f.OnReset[i])
	}
	return yaml.Marshal(f)
}

func fixNumbers(a *ActionFile) {
	conv := func(v any) any {
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return f
			}
		}
		return v
	}
	if a.Action != nil {
		a.Action.Value = conv(a.Action.Value)
	}
	if a.Command != nil {
		a.Command.Value = conv(a.Command.Value)
	}
	if a.Virtual != nil {
		a.Virtual.Value = conv(a.Virtual.Value)
	}
}

// writeAtomic writes b to path through a temporary file in the same folder.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".rule-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
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
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// saveRule validates src as rule id and writes it. create refuses an existing
// rule; otherwise the rule must exist unless upsert.
func (s *server) saveRule(id string, body []byte, create bool) (*Rule, error) {
	if !ValidID(id) {
		return nil, &config.PosError{Msg: fmt.Sprintf("rule id %q: want lowercase letters, digits, _ and -", id)}
	}
	src, err := normalise(body)
	if err != nil {
		return nil, badBody{err}
	}
	_, rs := s.engine()
	if rs == nil {
		return nil, errors.New("no rules loaded")
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	path, exists := rulePath(rs.Dir, id)
	if create && exists {
		return nil, errExists
	}
	r, errs := ParseRule(path, src, rs.Site, rs.Model)
	if len(errs) > 0 {
		return nil, &config.LoadError{Dir: s.cfg.ConfigDir, Errors: errs}
	}
	if err := writeAtomic(path, src); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return r, nil
}

func (s *server) deleteRule(id string) error {
	_, rs := s.engine()
	if rs == nil || !ValidID(id) {
		return errNotFound
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	path, exists := rulePath(rs.Dir, id)
	if !exists {
		return errNotFound
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

var topEnabled = regexp.MustCompile(`(?m)^enabled:[^\n#]*`)

// setEnabled rewrites the enabled key of a rule file, keeping the rest of the
// file (comments included) as it is.
func (s *server) setEnabled(id string, on bool) error {
	_, rs := s.engine()
	if rs == nil || !ValidID(id) {
		return errNotFound
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	path, exists := rulePath(rs.Dir, id)
	if !exists {
		return errNotFound
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("enabled: %t", on)
	var out []byte
	switch {
	case topEnabled.Match(src):
		out = topEnabled.ReplaceAll(src, []byte(line))
	default:
		// Add the key after the top-level id (or at the top); a flow-style document
		// is rewritten from its decoded form.
		if loc := regexp.MustCompile(`(?m)^id:[^\n]*\n`).FindIndex(src); loc != nil {
			out = append(append(append([]byte{}, src[:loc[1]]...), []byte(line+"\n")...), src[loc[1]:]...)
		} else if bytes.HasPrefix(bytes.TrimSpace(src), []byte("{")) {
			var f RuleFile
			if perr := config.DecodeStrict(path, src, &f); perr != nil {
				return perr
			}
			f.Enabled = &on
			if out, err = yaml.Marshal(f); err != nil {
				return err
			}
		} else {
			out = append([]byte(line+"\n"), src...)
		}
	}
	if _, errs := ParseRule(path, out, rs.Site, rs.Model); len(errs) > 0 {
		return &config.LoadError{Dir: s.cfg.ConfigDir, Errors: errs}
	}
	return writeAtomic(path, out)
}

// yamlUnmarshalLoose reads some keys of a document, ignoring the others.
func yamlUnmarshalLoose(src []byte, dst any) error { return yaml.Unmarshal(src, dst) }
