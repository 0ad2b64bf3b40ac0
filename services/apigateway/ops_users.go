package apigateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type userListOutput struct {
	Body struct {
		Users []userView `json:"users"`
	}
}

type userNamePath struct {
	Name string `path:"name" maxLength:"64" doc:"user name"`
}

type createUserInput struct {
	Body struct {
		Name     string `json:"name" minLength:"1" maxLength:"64"`
		Role     string `json:"role" enum:"viewer,operator,engineer,admin"`
		Password string `json:"password" minLength:"1" maxLength:"72"`
	}
}

type updateUserInput struct {
	Name string `path:"name" maxLength:"64" doc:"user name"`
	Body struct {
		Role     string `json:"role,omitempty" enum:"viewer,operator,engineer,admin" doc:"new role"`
		Password string `json:"password,omitempty" maxLength:"72" doc:"new password (the user's tokens are revoked)"`
	}
}

type userOutput struct {
	Body userView
}

func (s *server) registerUsers(api huma.API) {
	op(s, api, Admin, huma.Operation{
		OperationID: "listUsers", Method: http.MethodGet, Path: "/users", Tags: []string{"users"}, Summary: "List users",
	}, func(ctx context.Context, _ *struct{}) (*userListOutput, error) {
		us, err := s.users.list(ctx)
		if err != nil {
			return nil, err
		}
		out := &userListOutput{}
		out.Body.Users = make([]userView, 0, len(us))
		for _, u := range us {
			out.Body.Users = append(out.Body.Users, viewOf(u))
		}
		return out, nil
	})
	op(s, api, Admin, huma.Operation{
		OperationID: "createUser", Method: http.MethodPost, Path: "/users", Tags: []string{"users"}, Summary: "Create a user",
		DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, s.createUser)
	op(s, api, Admin, huma.Operation{
		OperationID: "getUser", Method: http.MethodGet, Path: "/users/{name}", Tags: []string{"users"}, Summary: "One user",
		Errors: []int{http.StatusNotFound},
	}, func(ctx context.Context, in *userNamePath) (*userOutput, error) {
		u, ok, err := s.users.get(ctx, in.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, huma.Error404NotFound("no user " + in.Name)
		}
		return &userOutput{Body: viewOf(u)}, nil
	})
	op(s, api, Admin, huma.Operation{
		OperationID: "updateUser", Method: http.MethodPatch, Path: "/users/{name}", Tags: []string{"users"},
		Summary:     "Change a user's role or password",
		Description: "Either change revokes every token of the user.",
		Errors:      []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, s.updateUser)
	op(s, api, Admin, huma.Operation{
		OperationID: "deleteUser", Method: http.MethodDelete, Path: "/users/{name}", Tags: []string{"users"},
		Summary: "Delete a user", DefaultStatus: http.StatusNoContent, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, s.deleteUser)
}

func (s *server) createUser(ctx context.Context, in *createUserInput) (*userOutput, error) {
	if err := checkUserName(in.Body.Name); err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	role, err := ParseRole(in.Body.Role)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	if err := s.checkPassword(in.Body.Password); err != nil {
		return nil, err
	}
	u, err := s.users.create(ctx, in.Body.Name, role, in.Body.Password)
	if errors.Is(err, errUserExists) {
		return nil, huma.Error409Conflict("user " + in.Body.Name + " exists")
	}
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "user_created", caller(ctx).User, "target", u.Name, "role", u.Role)
	return &userOutput{Body: viewOf(u)}, nil
}

func (s *server) updateUser(ctx context.Context, in *updateUserInput) (*userOutput, error) {
	var role Role
	if in.Body.Role != "" {
		r, err := ParseRole(in.Body.Role)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		role = r
		if in.Name == caller(ctx).User && r != Admin {
			return nil, huma.Error422UnprocessableEntity("you cannot take the admin role from yourself")
		}
	}
	var hash string
	if in.Body.Password != "" {
		if err := s.checkPassword(in.Body.Password); err != nil {
			return nil, err
		}
		h, err := s.users.hash(in.Body.Password)
		if err != nil {
			return nil, err
		}
		hash = h
	}
	if role == Public && hash == "" {
		return nil, huma.Error422UnprocessableEntity("nothing to change: give role or password")
	}
	u, err := s.users.update(ctx, in.Name, func(u *storedUser) error {
		if role != Public {
			u.Role = role.String()
		}
		if hash != "" {
			u.Hash = hash
		}
		return nil
	})
	if errors.Is(err, errUserNotFound) {
		return nil, huma.Error404NotFound("no user " + in.Name)
	}
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "user_changed", caller(ctx).User, "target", u.Name, "role", u.Role, "password_changed", hash != "")
	return &userOutput{Body: viewOf(u)}, nil
}

func (s *server) deleteUser(ctx context.Context, in *userNamePath) (*struct{}, error) {
	if in.Name == caller(ctx).User {
		return nil, huma.Error409Conflict("you cannot delete yourself")
	}
	ok, err := s.users.delete(ctx, in.Name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, huma.Error404NotFound("no user " + in.Name)
	}
	s.audit(ctx, "user_deleted", caller(ctx).User, "target", in.Name)
	return nil, nil
}
