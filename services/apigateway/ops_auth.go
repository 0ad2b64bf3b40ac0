package apigateway

import (
	"context"
	"errors"
	"fmt"
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
	i.RemoteAddr = clientAddr(ctx.RemoteAddr())
	return nil
}

type tokenOutput struct {
	Body tokenPair
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"256"`
	}
}

type userView struct {
	Name    string `json:"name"`
	Role    string `json:"role" enum:"viewer,operator,engineer,admin"`
	Created int64  `json:"created" doc:"Unix ms"`
	Updated int64  `json:"updated" doc:"Unix ms"`
}

func viewOf(u storedUser) userView {
	return userView{Name: u.Name, Role: u.Role, Created: u.Created, Updated: u.Updated}
}

type meOutput struct {
	Body userView
}

type passwordInput struct {
	Body struct {
		Current string `json:"current_password" minLength:"1" maxLength:"72"`
		New     string `json:"new_password" minLength:"1" maxLength:"72"`
	}
}

func (s *server) registerAuth(api huma.API) {
	op(s, api, Public, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/auth/login", Tags: []string{"auth"},
		Summary:     "Log in with user name and password",
		Description: "Answers an access token and a refresh token. Failed logins lock the user for a while after too many; too many attempts from one address are refused with 429.",
		Errors:      []int{http.StatusUnauthorized, http.StatusTooManyRequests},
	}, s.login)
	op(s, api, Public, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/auth/refresh", Tags: []string{"auth"},
		Summary:     "Trade a refresh token for a new token pair",
		Description: "The refresh token is single-use: it is rotated. Presenting a used one revokes every token of that login.",
		Errors:      []int{http.StatusUnauthorized},
	}, s.refresh)
	op(s, api, Viewer, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/auth/logout", Tags: []string{"auth"},
		Summary: "End the login the refresh token belongs to", DefaultStatus: http.StatusNoContent,
	}, s.logout)
	op(s, api, Viewer, huma.Operation{
		OperationID: "me", Method: http.MethodGet, Path: "/auth/me", Tags: []string{"auth"},
		Summary: "The calling user",
	}, func(ctx context.Context, _ *struct{}) (*meOutput, error) {
		if me := caller(ctx); isCloudUser(me.User) { // no stored user: the token is all there is
			return &meOutput{Body: userView{Name: me.User, Role: me.Role.String()}}, nil
		}
		u, ok, err := s.users.get(ctx, caller(ctx).User)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, huma.Error401Unauthorized("user no longer exists")
		}
		return &meOutput{Body: viewOf(u)}, nil
	})
	op(s, api, Viewer, huma.Operation{
		OperationID: "changePassword", Method: http.MethodPost, Path: "/auth/password", Tags: []string{"auth"},
		Summary:       "Change the calling user's password",
		Description:   "Every token of the user, on every device, is revoked; log in again.",
		DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
	}, s.changePassword)
}

func (s *server) login(ctx context.Context, in *loginInput) (*tokenOutput, error) {
	name := in.Body.User
	// Throttle by address first: it costs no bcrypt and protects every user.
	throttle := s.loginThrottle()
	refusal, err := throttle.Admit(ctx, in.RemoteAddr, name)
	if err != nil {
		return nil, huma.Error503ServiceUnavailable("login is unavailable: the state store does not answer")
	}
	switch {
	case refusal != nil && !refusal.Locked:
		s.metrics.logins.WithLabelValues("throttled").Inc()
		s.audit(ctx, "login_throttled", name, "addr", in.RemoteAddr)
		return nil, tooMany("too many login attempts from this address; wait a minute", refusal.RetryAfter)
	case refusal != nil:
		s.metrics.logins.WithLabelValues("locked").Inc()
		s.audit(ctx, "login_locked", name, "addr", in.RemoteAddr)
		return nil, tooMany("too many failed logins for this user; it is locked for a while", refusal.RetryAfter)
	}
	u, ok, err := s.users.verify(ctx, name, in.Body.Password)
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := throttle.Failed(ctx, name); err != nil {
			s.log.Warn("cannot count a failed login", "user", name, "err", err)
		}
		s.metrics.logins.WithLabelValues("failed").Inc()
		s.audit(ctx, "login_failed", name, "addr", in.RemoteAddr)
		return nil, huma.Error401Unauthorized("wrong user name or password")
	}
	if err := throttle.Succeeded(ctx, name); err != nil {
		s.log.Warn("cannot clear failed logins", "user", name, "err", err)
	}
	p, err := s.tokens.issue(ctx, u)
	if err != nil {
		return nil, err
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	s.audit(ctx, "login", u.Name, "addr", in.RemoteAddr, "role", u.Role)
	return &tokenOutput{Body: p}, nil
}

// loginThrottle is shared/auth's login throttle over the site's Redis
// (gw:login:addr:*, gw:login:fail:*) with the settings' limits.
func (s *server) loginThrottle() *auth.Throttle {
	return auth.NewThrottle(s.users.store, auth.LoginLimits{
		PerAddressPerMinute: s.set.Login.PerAddressPerMinute,
		MaxFailures:         s.set.Login.MaxFailures,
		Lockout:             s.set.lockout,
	})
}

func tooMany(msg string, retry time.Duration) error {
	if retry <= 0 {
		retry = time.Second
	}
	return &retryError{ErrorModel: huma.ErrorModel{Status: http.StatusTooManyRequests, Title: http.StatusText(http.StatusTooManyRequests), Detail: msg},
		after: strconv.Itoa(int((retry + time.Second - 1) / time.Second))}
}

// retryError is a 429 with Retry-After.
type retryError struct {
	huma.ErrorModel
	after string
}

func (e *retryError) GetHeaders() http.Header { return http.Header{"Retry-After": {e.after}} }

func (s *server) refresh(ctx context.Context, in *refreshInput) (*tokenOutput, error) {
	p, user, err := s.tokens.refresh(ctx, in.Body.RefreshToken)
	switch {
	case errors.Is(err, errRefreshReuse):
		s.audit(ctx, "refresh_reuse_revoked", user)
		return nil, huma.Error401Unauthorized(err.Error())
	case errors.Is(err, errBadToken):
		return nil, huma.Error401Unauthorized("invalid, expired or revoked refresh token")
	case err != nil:
		return nil, err
	}
	return &tokenOutput{Body: p}, nil
}

func (s *server) logout(ctx context.Context, in *refreshInput) (*struct{}, error) {
	me := caller(ctx)
	if err := s.tokens.revoke(ctx, me.User, in.Body.RefreshToken); err != nil {
		if errors.Is(err, errBadToken) {
			return nil, huma.Error401Unauthorized("not a refresh token of yours")
		}
		return nil, err
	}
	s.audit(ctx, "logout", me.User)
	return nil, nil
}

func (s *server) checkPassword(pw string) error {
	if len(pw) < s.set.MinPasswordLength {
		return huma.Error422UnprocessableEntity(fmt.Sprintf("the password must have at least %d characters", s.set.MinPasswordLength))
	}
	return nil
}

func (s *server) changePassword(ctx context.Context, in *passwordInput) (*struct{}, error) {
	me := caller(ctx)
	if err := s.checkPassword(in.Body.New); err != nil {
		return nil, err
	}
	if _, ok, err := s.users.verify(ctx, me.User, in.Body.Current); err != nil {
		return nil, err
	} else if !ok {
		s.audit(ctx, "password_change_refused", me.User)
		return nil, huma.Error422UnprocessableEntity("the current password is wrong")
	}
	h, err := s.users.hash(in.Body.New)
	if err != nil {
		return nil, err
	}
	if _, err := s.users.update(ctx, me.User, func(u *storedUser) error { u.Hash = h; return nil }); err != nil {
		return nil, err
	}
	s.audit(ctx, "password_changed", me.User)
	return nil, nil
}
