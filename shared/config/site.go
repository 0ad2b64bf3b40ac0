package config

import (
	"net"
	"net/url"
	"strconv"
)

// Defaults applied to site.yaml keys that are not written.
const (
	DefaultRedisURL      = "redis://127.0.0.1:6379/0"
	DefaultChangesMaxLen = 1_000_000
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
)

// maxSiteIDLen keeps the site id usable as a NATS subject token and JetStream domain.
const maxSiteIDLen = 64

// ListenAddr is the listen address site.yaml gives the service, or defaultAddr when it
// gives none.
func (s *Site) ListenAddr(service, defaultAddr string) string {
	if s == nil {
		return defaultAddr
	}
	if a := s.Listen[service]; a != "" {
		return a
	}
	return defaultAddr
}

// loadSite decodes and validates site.yaml.
func loadSite(path string, src []byte, l *errList) Site {
	s := Site{
		Redis:   Redis{URL: DefaultRedisURL, ChangesMaxLen: DefaultChangesMaxLen},
		Logging: Logging{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
	doc := parseYAML(path, src, l)
	if doc == nil {
		return s
	}
	fields := map[string]fieldInfo{}
	doc.decodeStruct(doc.body, &s, "", fields, l)
	validateSite(&s, Position{File: path}, fields, l)
	return s
}

func validateSite(s *Site, file Position, fields map[string]fieldInfo, l *errList) {
	at := func(key string) Position {
		if f, ok := fields[key]; ok {
			return f.pos
		}
		return file
	}
	// written reports whether key was written and decoded, i.e. whether its value is
	// the user's and worth checking (a decode error has already been reported).
	written := func(key string) bool { return fields[key].ok }

	switch f, ok := fields["site.id"]; {
	case !ok:
		l.add(file, "site.id is required (letters, digits, - and _; it names the site in NATS subjects)")
	case f.ok:
		if msg := checkSiteID(s.Site.ID); msg != "" {
			l.add(f.pos, "site.id: %s", msg)
		}
	}

	if written("redis.url") {
		if msg := checkURL(s.Redis.URL, "redis", "rediss", "unix"); msg != "" {
			l.add(at("redis.url"), "redis.url: %s", msg)
		}
	}
	if written("redis.changes_maxlen") && s.Redis.ChangesMaxLen <= 0 {
		l.add(at("redis.changes_maxlen"), "redis.changes_maxlen: must be > 0, got %d", s.Redis.ChangesMaxLen)
	}
	if written("nats.url") && s.NATS.URL != "" {
		if msg := checkURL(s.NATS.URL, "nats", "tls", "ws", "wss"); msg != "" {
			l.add(at("nats.url"), "nats.url: %s", msg)
		}
	}
	if written("nats.leaf_remote") && s.NATS.LeafRemote != "" {
		if msg := checkURL(s.NATS.LeafRemote, "nats", "tls", "ws", "wss", "nats-leaf"); msg != "" {
			l.add(at("nats.leaf_remote"), "nats.leaf_remote: %s", msg)
		}
	}

	tlsAt := func() Position {
		for _, k := range []string{"nats.tls.ca_file", "nats.tls.cert_file", "nats.tls.key_file"} {
			if _, ok := fields[k]; ok {
				return at(k)
			}
		}
		return file
	}
	if (s.NATS.TLS.CertFile == "") != (s.NATS.TLS.KeyFile == "") {
		l.add(tlsAt(), "nats.tls: cert_file and key_file go together (the site's client certificate and its key)")
	}
	if s.NATS.TLS != (NATSTLS{}) && s.NATS.LeafRemote == "" {
		l.add(tlsAt(), "nats.tls: set for the leaf link, but nats.leaf_remote is not set")
	}

	switch s.Logging.Level {
	case "debug", "info", "warn", "error":
	default:
		l.add(at("logging.level"), "logging.level: unknown level %q (want debug, info, warn or error)", s.Logging.Level)
	}
	switch s.Logging.Format {
	case "text", "json":
	default:
		l.add(at("logging.format"), "logging.format: unknown format %q (want text or json)", s.Logging.Format)
	}

	if written("listen") {
		for _, service := range sortedKeys(s.Listen) {
			key := "listen." + service
			if !isIdentifier(service) {
				l.add(at(key), "listen: service name %q: want letters, digits, - and _", service)
			}
			if msg := checkHostPort(s.Listen[service]); msg != "" {
				l.add(at(key), "%s: %s", key, msg)
			}
		}
	}
}

// checkSiteID returns what is wrong with a site id, or "".
func checkSiteID(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len(id) > maxSiteIDLen:
		return "longer than " + strconv.Itoa(maxSiteIDLen) + " characters"
	case !isIdentifier(id):
		return strconv.Quote(id) + " may hold only letters, digits, - and _ (it is used in NATS subjects)"
	}
	return ""
}

// isIdentifier reports whether s is non-empty and made of ASCII letters, digits, '-'
// and '_': safe in NATS subjects, Redis keys and file names.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

func checkURL(s string, schemes ...string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "invalid URL " + strconv.Quote(s)
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return ""
		}
	}
	return "URL " + strconv.Quote(s) + " has scheme " + strconv.Quote(u.Scheme) + "; want one of " + joinQuoted(schemes)
}

// checkHostPort accepts host:port with a numeric port, host optional (":6001").
func checkHostPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "want host:port, got " + strconv.Quote(addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "port " + strconv.Quote(port) + " is not a number 0..65535"
	}
	return ""
}
