// Package httpapi holds the conventions every service's internal HTTP API shares:
// JSON answers, errors as RFC 9457 problem documents (application/problem+json),
// bounded strict JSON bodies, and the header through which the gateway names the
// user a request acts for.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HeaderUser carries the name of the user a request acts for. The gateway, which
// authenticates users, sets it on the requests it forwards to internal services;
// they record it (audit, alarm acknowledgements) and never trust it from elsewhere
// — internal services listen on loopback or a private network only (DESIGN §9).
const HeaderUser = "X-Voltage-User"

// MaxBody is the default limit of a request body.
const MaxBody = 1 << 20

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem answers with an RFC 9457 problem document. title is a short, fixed
// summary of the kind of problem ("" = the status text), detail says what is
// wrong in this request, and extra members (e.g. "errors": [...]) are added as
// they are.
func Problem(w http.ResponseWriter, status int, title, detail string, extra ...map[string]any) {
	if title == "" {
		title = http.StatusText(status)
	}
	body := map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail}
	for _, m := range extra {
		for k, v := range m {
			if _, fixed := body[k]; !fixed {
				body[k] = v
			}
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// ErrEmptyBody is what ReadJSON returns (inside a *BodyError) for an empty body,
// so a handler whose body is optional can accept it with errors.Is.
var ErrEmptyBody = errors.New("empty; a JSON object is expected")

// BodyError is a request body that cannot be used; answer it with 400.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return "request body: " + e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// ReadJSON decodes the request body into dst strictly: at most limit bytes (≤ 0
// means MaxBody), one JSON value, no unknown fields. Every failure is a
// *BodyError naming what is wrong.
func ReadJSON(r *http.Request, dst any, limit int64) error {
	if limit <= 0 {
		limit = MaxBody
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return &BodyError{Err: err}
	}
	if int64(len(b)) > limit {
		return &BodyError{Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return &BodyError{Err: ErrEmptyBody}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &BodyError{Err: describeJSONError(err, b)}
	}
	if dec.More() {
		return &BodyError{Err: errors.New("more than one JSON value")}
	}
	return nil
}

// describeJSONError turns encoding/json's errors into messages an API user can act on.
func describeJSONError(err error, b []byte) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(b, syntax.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, syntax)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: unexpected end")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", f)
	}
	return err
}

func position(b []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < offset-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// User is the user named by HeaderUser, or "anonymous". Names longer than 128
// bytes or with control characters are not taken.
func User(r *http.Request) string {
	u := strings.TrimSpace(r.Header.Get(HeaderUser))
	if u == "" || len(u) > 128 || strings.ContainsFunc(u, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "anonymous"
	}
	return u
}
