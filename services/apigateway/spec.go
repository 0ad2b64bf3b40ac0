package apigateway

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/go-chi/chi/v5"
)

//go:generate go run ./cmd/apigateway-spec -out ../../openapi

// Spec returns the OpenAPI documents of the API, 3.1 and 3.0.3, indented as they
// are checked in under openapi/. It needs no Redis: the operations are only
// described, never called.
func Spec() (v31, v30 []byte, err error) {
	s := &server{set: DefaultSettings(), svc: newInternalServices(nil, nil)}
	api := s.newAPI(chi.NewRouter())
	b31, err := json.Marshal(api.OpenAPI())
	if err != nil {
		return nil, nil, fmt.Errorf("encode OpenAPI 3.1: %w", err)
	}
	b30, err := api.OpenAPI().Downgrade()
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
