package hub

import (
	"log/slog"

	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/shared/httpapi"
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
	return httpapi.SpecDocuments(a.mount(chi.NewRouter()).OpenAPI())
}
