package apigateway

import (
	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/shared/httpapi"
)

//go:generate go run ./cmd/apigateway-spec -out ../../openapi

// Spec returns the OpenAPI documents of the API, 3.1 and 3.0.3, indented as they
// are checked in under openapi/. It needs no Redis: the operations are only
// described, never called.
func Spec() (v31, v30 []byte, err error) {
	s := &server{set: DefaultSettings(), svc: newInternalServices(nil, nil)}
	return httpapi.SpecDocuments(s.newAPI(chi.NewRouter()).OpenAPI())
}
