package apigateway

import "github.com/voltageems/voltage/shared/auth"

// Role is what a user may do (shared/auth: viewer < operator < engineer < admin).
type Role = auth.Role

// Roles of DESIGN §11. Public is the pseudo-role of the few operations that need
// no token (login, refresh, the spec).
const (
	Public   = auth.Public
	Viewer   = auth.Viewer
	Operator = auth.Operator
	Engineer = auth.Engineer
	Admin    = auth.Admin
)

// ParseRole reads a user role (public is not one).
func ParseRole(s string) (Role, error) { return auth.ParseRole(s) }

// UserRoles are the role names a user can have, for enums in the spec.
var UserRoles = auth.UserRoles
