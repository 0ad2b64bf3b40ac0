package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// OpenAPI is a public API's description as Huma keeps it (*huma.OpenAPI): it
// encodes itself as OpenAPI 3.1 and downgrades to 3.0.3 for older generators.
type OpenAPI interface {
	MarshalJSON() ([]byte, error)
	Downgrade() ([]byte, error)
}

// SpecDocuments returns the documents of an API, OpenAPI 3.1 and 3.0.3, indented
// as they are checked in under openapi/ (a drift test compares them).
func SpecDocuments(o OpenAPI) (v31, v30 []byte, err error) {
	b31, err := o.MarshalJSON()
	if err != nil {
		return nil, nil, fmt.Errorf("encode OpenAPI 3.1: %w", err)
	}
	b30, err := o.Downgrade()
	if err != nil {
		return nil, nil, fmt.Errorf("encode OpenAPI 3.0: %w", err)
	}
	if v31, err = indent(b31); err != nil {
		return nil, nil, err
	}
	if v30, err = indent(b30); err != nil {
		return nil, nil, err
	}
	return v31, v30, nil
}

func indent(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, fmt.Errorf("indent spec: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ServeSpecs serves the API's documents to anyone: /openapi.json (3.1) and
// /openapi-3.0.json (3.0.3), encoded once, at the first request (every operation
// is registered by then).
func ServeSpecs(get func(pattern string, h http.HandlerFunc), o OpenAPI) {
	var once sync.Once
	var v31, v30 []byte
	encode := func() {
		once.Do(func() {
			v31, _ = o.MarshalJSON()
			v30, _ = o.Downgrade()
		})
	}
	serve := func(doc *[]byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			encode()
			w.Header().Set("Content-Type", "application/openapi+json")
			_, _ = w.Write(*doc)
		}
	}
	get("/openapi.json", serve(&v31))
	get("/openapi-3.0.json", serve(&v30))
}
