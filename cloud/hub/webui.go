package hub

import (
	"github.com/go-chi/chi/v5"

	"github.com/voltageems/voltage/web"
)

// mountWebUI serves the web UI's fleet pages (package web, embedded in the
// binary) for every path the API does not route: GET / is the app, /assets/
// its files. The API's own 404s stay problem+json; the UI sets its own
// Content-Security-Policy over the API's default-src 'none'.
func mountWebUI(r chi.Router) {
	r.NotFound(web.FleetHandler().ServeHTTP)
}
