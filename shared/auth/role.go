package auth

import "fmt"

// Role is what a user may do. Roles are ordered: each includes the ones below it.
type Role int

// Roles of DESIGN §11: viewer < operator < engineer < admin. Public is the
// pseudo-role of the few operations that need no token (login, refresh, the spec).
const (
	Public   Role = 0
	Viewer   Role = 1 // reads everything but users and the audit log
	Operator Role = 2 // controls: commands, actions, alarm acknowledgements
	Engineer Role = 3 // configuration: validate, reload, shelve alarms, rules
	Admin    Role = 4 // users and the audit log
)

var roleNames = map[Role]string{Public: "public", Viewer: "viewer", Operator: "operator", Engineer: "engineer", Admin: "admin"}

func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole reads a user role (public is not one).
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s && r != Public {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (viewer, operator, engineer, admin)", s)
}

// UserRoles are the role names a user can have, for enums in API specs.
var UserRoles = []string{"viewer", "operator", "engineer", "admin"}
