package hub

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/auth"
)

type loginInput struct {
	RemoteAddr string `hidden:"true" json:"-"` // filled by Resolve
	Body       struct {
		User     string `json:"user" minLength:"1" maxLength:"64" doc:"user name"`
		Password string `json:"password" minLength:"1" maxLength:"72" doc:"password"`
	}
}

// Resolve takes the peer address for login throttling.
func (i *loginInput) Resolve(ctx huma.Context) []error {
	i.RemoteAddr = ctx.RemoteAddr()
	if host, _, err := net.SplitHostPort(i.RemoteAddr); err == nil {
		i.RemoteAddr = host
	}
	return nil
}

type tokenOutput struct {
	Body auth.TokenPair
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"256"`
	}
}

// userView is a user as the API shows it (never its hash).
type userView struct {
	Name    string   `json:"name"`
	Role    string   `json:"role" enum:"viewer,operator,engineer,admin"`
	Sites   []string `json:"sites" doc:"the sites the user reaches; \"*\" = all (an admin reaches all)"`
	Created int64    `json:"created" doc:"Unix ms"`
	Updated int64    `json:"updated" doc:"Unix ms"`
}

func viewOf(u auth.User) userView {
	sites := u.Sites
	if sites == nil {
		sites = []string{}
	}
	if u.Role == auth.Admin.String() {
		sites = []string{auth.AllSites}
	}
	return userView{Name: u.Name, Role: u.Role, Sites: sites, Created: u.Created, Updated: u.Updated}
}

type userOutput struct {
	Body userView
}

func (a *api) registerAuth(hapi huma.API) {
	op(hapi, auth.Public, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/auth/login", Tags: []string{"auth"},
		Summary:     "Log in with user name and password",
		Description: "Answers an access token and a refresh token. Too many attempts from one address, or too many failures of one user, are refused with 429 and Retry-After.",
		Errors:      []int{http.StatusUnauthorized, http.StatusTooManyRequests},
	}, a.login)
	op(hapi, auth.Public, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/auth/refresh", Tags: []string{"auth"},
		Summary:     "Trade a refresh token for a new token pair",
		Description: "The refresh token is single-use: it is rotated. Presenting a used one revokes every token of that login.",
		Errors:      []int{http.StatusUnauthorized},
	}, a.refresh)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/auth/logout", Tags: []string{"auth"},
		Summary: "End the login the refresh token belongs to", DefaultStatus: http.StatusNoContent,
	}, a.logout)
	op(hapi, auth.Viewer, huma.Operation{
		OperationID: "me", Method: http.MethodGet, Path: "/auth/me", Tags: []string{"auth"},
		Summary: "The logged-in user, its role and site scope",
	}, func(ctx context.Context, _ *struct{}) (*userOutput, error) {
		return &userOutput{Body: viewOf(caller(ctx).user)}, nil
	})
}

func (a *api) login(ctx context.Context, in *loginInput) (*tokenOutput, error) {
	name := in.Body.User
	// Throttle by address first: it costs no bcrypt and protects every user.
	refusal, err := a.throttle.Admit(ctx, in.RemoteAddr, name)
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("login is unavailable: the users store does not answer")
	}
	if refusal != nil {
		a.log.Warn("login refused", "user", name, "addr", in.RemoteAddr, "locked", refusal.Locked)
		a.h.audit(ctx, "login_throttled", name, "", "addr", in.RemoteAddr, "locked", strconv.FormatBool(refusal.Locked))
		msg := "too many login attempts from this address; wait a minute"
		if refusal.Locked {
			msg = "too many failed logins for this user; it is locked for a while"
		}
		return nil, tooMany(msg, refusal.RetryAfter)
	}
	u, ok, err := a.users.Verify(ctx, name, in.Body.Password)
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("the users store does not answer")
	}
	if !ok {
		if err := a.throttle.Failed(ctx, name); err != nil {
			a.log.Warn("cannot count a failed login", "user", name, "err", err)
		}
		a.log.Info("login failed", "user", name, "addr", in.RemoteAddr)
		a.h.audit(ctx, "login_failed", name, "", "addr", in.RemoteAddr)
		return nil, huma.Error401Unauthorized("wrong user name or password")
	}
	if err := a.throttle.Succeeded(ctx, name); err != nil {
		a.log.Warn("cannot clear failed logins", "user", name, "err", err)
	}
	pair, err := a.tokens.Issue(ctx, u)
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("cannot issue tokens now")
	}
	a.log.Info("login", "user", u.Name)
	a.h.audit(ctx, "login", u.Name, "", "addr", in.RemoteAddr, "role", u.Role)
	return &tokenOutput{Body: pair}, nil
}

// tooMany is a 429 with Retry-After in whole seconds.
func tooMany(msg string, after time.Duration) error {
	secs := int64(after.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	h := http.Header{}
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	return huma.ErrorWithHeaders(huma.Error429TooManyRequests(msg), h)
}

func (a *api) refresh(ctx context.Context, in *refreshInput) (*tokenOutput, error) {
	pair, user, err := a.tokens.Refresh(ctx, in.Body.RefreshToken)
	switch {
	case errors.Is(err, auth.ErrRefreshReuse):
		a.log.Warn("refresh token reused; the login is revoked", "user", user)
		return nil, huma.Error401Unauthorized(err.Error())
	case errors.Is(err, auth.ErrBadToken):
		return nil, huma.Error401Unauthorized(err.Error())
	case err != nil:
		return nil, huma.Error503ServiceUnavailable("cannot refresh now")
	}
	return &tokenOutput{Body: pair}, nil
}

func (a *api) logout(ctx context.Context, in *refreshInput) (*struct{}, error) {
	err := a.tokens.Revoke(ctx, caller(ctx).User, in.Body.RefreshToken)
	switch {
	case errors.Is(err, auth.ErrBadToken):
		return nil, huma.Error401Unauthorized("not a refresh token of yours")
	case err != nil:
		return nil, huma.Error503ServiceUnavailable("cannot log out now")
	}
	a.h.audit(ctx, "logout", caller(ctx).User, "")
	return nil, nil
}
