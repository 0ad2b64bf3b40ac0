// Package web is the VoltageEMS web UI: the built single-page app (web/src, built
// by `go tool task web` into web/dist, checked in) embedded in the binary and
// served by Handler. The gateway mounts it for every path its API does not use;
// the app routes with the URL fragment (#/alarms), so a page reload never asks
// the server for an API path.
package web

import (
	"bytes"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Files is the built app (the contents of web/dist).
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Handler serves the app: files of dist as they are (hashed assets under
// /assets/ cached for a year, everything else revalidated), index.html for any
// other GET that asks for HTML (a bookmarked or reloaded page), and a
// problem+json 404 for the rest — an API client calling a path that does not
// exist must not get a web page. Every UI answer carries its own
// Content-Security-Policy: only the app's own origin, and WebSocket to it.
func Handler() http.Handler {
	return handler(Files(), "")
}

// FleetHandler is Handler for the cloud hub: the same app, told by a meta tag
// in index.html to show the fleet pages (sites, fleet alarms, one site through
// the cloud API) instead of a site's.
func FleetHandler() http.Handler {
	return handler(Files(), "fleet")
}

// handler serves files; mode, when set, is written into index.html as
// <meta name="voltage-app" content="{mode}"> (a tag, not a script: the CSP
// allows no inline script).
func handler(files fs.FS, mode string) http.Handler {
	fileServer := http.FileServerFS(files)
	var index []byte
	if mode != "" {
		b, err := fs.ReadFile(files, "index.html")
		if err == nil {
			index = bytes.Replace(b, []byte("<head>"), []byte(`<head><meta name="voltage-app" content="`+mode+`">`), 1)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			notFound(w)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
			if !acceptsHTML(r) {
				notFound(w)
				return
			}
			name = "index.html"
		}
		setUIHeaders(w, r)
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if name == "index.html" && index != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(index))
			return
		}
		if name == "index.html" {
			// FileServer would redirect /index.html to /; serve the content itself.
			serveFile(w, r, files, name)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		fileServer.ServeHTTP(w, r2)
	})
}

// serveFile writes one file of files with its modification time and type.
func serveFile(w http.ResponseWriter, r *http.Request, files fs.FS, name string) {
	f, err := files.Open(name)
	if err != nil {
		notFound(w)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		notFound(w)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		notFound(w)
		return
	}
	http.ServeContent(w, r, name, st.ModTime(), rs)
}

// setUIHeaders replaces the API's headers (CSP default-src 'none') with the
// ones a page needs. The WebSocket origin is the page's own host: CSP 'self'
// does not cover ws: and wss: in every browser.
func setUIHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
		"connect-src 'self'"
	if host := r.Host; validHost(host) {
		csp += " ws://" + host + " wss://" + host
	}
	csp += "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// validHost accepts a Host header that can stand in a CSP source: a name or
// address with an optional port, nothing that could end the directive.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"title":"Not Found","status":404,"detail":"no such path"}` + "\n"))
}
