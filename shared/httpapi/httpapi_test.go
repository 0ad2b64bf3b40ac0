package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/httpapi"
)

func TestProblemDocument(t *testing.T) {
	rec := httptest.NewRecorder()
	httpapi.Problem(rec, http.StatusUnprocessableEntity, "", "max is 100", map[string]any{"field": "value", "status": 1})
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || rec.Code != 422 {
		t.Fatalf("%d %s", rec.Code, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["title"] != "Unprocessable Entity" || body["detail"] != "max is 100" || body["status"] != float64(422) || body["field"] != "value" {
		t.Fatalf("body %v (extra members must not replace the fixed ones)", body)
	}
}

func TestReadJSON(t *testing.T) {
	type target struct {
		Value float64 `json:"value"`
		Name  string  `json:"name"`
	}
	req := func(body string) *http.Request {
		return httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	}
	var ok target
	if err := httpapi.ReadJSON(req(`{"value": 1.5, "name": "x"}`), &ok, 0); err != nil || ok.Value != 1.5 || ok.Name != "x" {
		t.Fatalf("%+v, %v", ok, err)
	}
	if err := httpapi.ReadJSON(req(" \n"), &ok, 0); !errors.Is(err, httpapi.ErrEmptyBody) {
		t.Errorf("empty body: %v, want ErrEmptyBody", err)
	}
	for body, want := range map[string]string{
		``:                          "empty",
		`{"value": 1,}`:             "line 1, column 13",
		"{\n\"value\": tru}":        "line 2",
		`{"value": "high"}`:         `field "value": want float64, got JSON string`,
		`{"valeu": 1}`:              `unknown field "valeu"`,
		`{"value": 1} {"value": 2}`: "more than one JSON value",
		`{"value": 1`:               "unexpected end",
		`{"name": "` + strings.Repeat("x", 100) + `"}`: "larger than 64 bytes",
	} {
		var dst target
		err := httpapi.ReadJSON(req(body), &dst, 64)
		var be *httpapi.BodyError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadJSON(%q) = %v, want a BodyError containing %q", body, err, want)
		}
	}
}

func TestUser(t *testing.T) {
	for header, want := range map[string]string{
		"":                       "anonymous",
		" alice ":                "alice",
		"bob\x00":                "anonymous",
		strings.Repeat("x", 129): "anonymous",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set(httpapi.HeaderUser, header)
		if got := httpapi.User(r); got != want {
			t.Errorf("User(%q) = %q, want %q", header, got, want)
		}
	}
}
