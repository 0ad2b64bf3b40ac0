package hub

import "time"

// Auth sets the cloud API's sign-in.
type Auth struct {
	AccessTTL  Duration `yaml:"access_ttl"`  // access token lifetime; default 15m
	RefreshTTL Duration `yaml:"refresh_ttl"` // refresh token lifetime; default 720h
	// PerAddressPerMinute limits login attempts of one client address (default 30).
	PerAddressPerMinute int `yaml:"per_address_per_minute"`
	// MaxFailures is how many failed logins of one user lock it (default 5) …
	MaxFailures int `yaml:"max_failures"`
	// … for Lockout (default 15m).
	Lockout Duration `yaml:"lockout"`
}

// Defaults of the auth section.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 30 * 24 * time.Hour
)

func (a *Auth) applyDefaults() {
	if a.AccessTTL.Duration == 0 {
		a.AccessTTL.Duration = DefaultAccessTTL
	}
	if a.RefreshTTL.Duration == 0 {
		a.RefreshTTL.Duration = DefaultRefreshTTL
	}
	if a.PerAddressPerMinute == 0 {
		a.PerAddressPerMinute = 30
	}
	if a.MaxFailures == 0 {
		a.MaxFailures = 5
	}
	if a.Lockout.Duration == 0 {
		a.Lockout.Duration = 15 * time.Minute
	}
}

func (v *validator) validateAuth(a *Auth) {
	if a.AccessTTL.Duration < 0 {
		v.add("$.auth.access_ttl", "auth.access_ttl: must be positive")
	}
	if a.PerAddressPerMinute < 1 {
		v.add("$.auth.per_address_per_minute", "auth.per_address_per_minute: want at least 1")
	}
	if a.MaxFailures < 1 {
		v.add("$.auth.max_failures", "auth.max_failures: want at least 1")
	}
	if a.Lockout.Duration < 0 {
		v.add("$.auth.lockout", "auth.lockout: must be positive")
	}
	if a.RefreshTTL.Duration < a.AccessTTL.Duration {
		v.add("$.auth.refresh_ttl", "auth.refresh_ttl: must not be shorter than auth.access_ttl")
	}
}
