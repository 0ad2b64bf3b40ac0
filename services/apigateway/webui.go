package apigateway

import (
	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/web"
)

// mountWebUI serves the web UI (package web, embedded in the binary) for every
// path the API does not route: GET / is the app, /assets/ its files, and any
// other GET asking for HTML falls back to the app. The API's own 404s stay
// problem+json. The UI sets its own Content-Security-Policy (the API's is
// default-src 'none', under which no page could run).
func mountWebUI(r chi.Router) {
	r.NotFound(web.Handler().ServeHTTP)
}
