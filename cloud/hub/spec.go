package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/go-chi/chi/v5"
)

//go:generate go run ../cmd/voltage-cloud-spec -out ../../openapi

// SpecFiles are the names of the checked-in cloud API documents under openapi/.
const (
	SpecFile31 = "cloud-openapi.json"
	SpecFile30 = "cloud-openapi-3.0.json"
)

// Spec returns the OpenAPI documents of the cloud API, 3.1 and 3.0.3, indented as
// they are checked in under openapi/. It needs no NATS: the operations are only
// described, never called.
func Spec() (v31, v30 []byte, err error) {
	a := &api{log: slog.New(slog.DiscardHandler)}
	hapi := a.mount(chi.NewRouter())
	b31, err := json.Marshal(hapi.OpenAPI())
	if err != nil {
		return nil, nil, fmt.Errorf("encode OpenAPI 3.1: %w", err)
	}
	b30, err := hapi.OpenAPI().Downgrade()
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
