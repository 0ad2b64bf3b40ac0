package hub

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/voltageems/voltage/shared/auth"
	"github.com/voltageems/voltage/shared/subjects"
)

type usersOutput struct {
	Body struct {
		Users []userView `json:"users"`
	}
}

type createUserInput struct {
	Body struct {
		Name     string   `json:"name" minLength:"1" maxLength:"64"`
		Role     string   `json:"role" enum:"viewer,operator,engineer,admin"`
		Password string   `json:"password" minLength:"12" maxLength:"72"`
		Sites    []string `json:"sites" maxItems:"1000" doc:"site ids the user reaches, or [\"*\"] for all"`
	}
}

type userNameInput struct {
	Name string `path:"name" maxLength:"64"`
}

func (a *api) registerUsers(hapi huma.API) {
	op(hapi, auth.Admin, huma.Operation{
		OperationID: "listUsers", Method: http.MethodGet, Path: "/users", Tags: []string{"users"},
		Summary: "Every user with its role and site scope",
	}, func(ctx context.Context, _ *struct{}) (*usersOutput, error) {
		us, err := a.users.List(ctx)
		if err != nil {
			return nil, huma.Error503ServiceUnavailable("the users store does not answer")
		}
		out := &usersOutput{}
		out.Body.Users = make([]userView, 0, len(us))
		for _, u := range us {
			out.Body.Users = append(out.Body.Users, viewOf(u))
		}
		return out, nil
	})
	op(hapi, auth.Admin, huma.Operation{
		OperationID: "createUser", Method: http.MethodPost, Path: "/users", Tags: []string{"users"},
		Summary: "Create a user with a role and the sites it reaches", DefaultStatus: http.StatusCreated,
		Errors: []int{http.StatusConflict, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *createUserInput) (*userOutput, error) {
		b := in.Body
		if err := auth.CheckUserName(b.Name); err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		role, err := auth.ParseRole(b.Role)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		for i, s := range b.Sites {
			if s == auth.AllSites {
				continue
			}
			if err := subjects.ValidSiteID(s); err != nil {
				return nil, huma.Error422UnprocessableEntity("sites[" + itoa(i) + "]: " + err.Error())
			}
		}
		u, err := a.users.Create(ctx, b.Name, role, b.Password, slices.Compact(slices.Sorted(slices.Values(b.Sites))))
		switch {
		case errors.Is(err, auth.ErrUserExists):
			return nil, huma.Error409Conflict("user " + b.Name + " exists")
		case err != nil:
			return nil, huma.Error503ServiceUnavailable("the users store does not answer")
		}
		a.log.Info("user created", "user", u.Name, "role", u.Role, "sites", u.Sites, "by", caller(ctx).User)
		a.h.audit(ctx, "user_created", caller(ctx).User, "", "name", u.Name, "role", u.Role, "sites", strings.Join(u.Sites, ","))
		return &userOutput{Body: viewOf(u)}, nil
	})
	op(hapi, auth.Admin, huma.Operation{
		OperationID: "deleteUser", Method: http.MethodDelete, Path: "/users/{name}", Tags: []string{"users"},
		Summary: "Delete a user; its tokens stop working", DefaultStatus: http.StatusNoContent,
		Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity},
	}, func(ctx context.Context, in *userNameInput) (*struct{}, error) {
		if in.Name == caller(ctx).User {
			return nil, huma.Error422UnprocessableEntity("you cannot delete yourself")
		}
		ok, err := a.users.Delete(ctx, in.Name)
		switch {
		case err != nil:
			return nil, huma.Error503ServiceUnavailable("the users store does not answer")
		case !ok:
			return nil, huma.Error404NotFound("no user " + in.Name)
		}
		a.log.Info("user deleted", "user", in.Name, "by", caller(ctx).User)
		a.h.audit(ctx, "user_deleted", caller(ctx).User, "", "name", in.Name)
		return nil, nil
	})
}
