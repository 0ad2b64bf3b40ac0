package hub_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/auth"
)

// TestCheckedInSpecMatchesCode fails when the API changed and openapi/ was not
// refreshed: run `go generate ./cloud/hub`.
func TestCheckedInSpecMatchesCode(t *testing.T) {
	v31, v30, err := hub.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{hub.SpecFile31: v31, hub.SpecFile30: v30} {
		got, err := os.ReadFile(filepath.Join("..", "..", "openapi", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("openapi/%s differs from the code; run `go generate ./cloud/hub` and commit the result", name)
		}
	}
	var doc struct {
		OpenAPI string
		Paths   map[string]map[string]map[string]any
	}
	_ = json.Unmarshal(v30, &doc)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("%s is version %q", hub.SpecFile30, doc.OpenAPI)
	}
	// Every operation names its role; only login and refresh are public.
	for path, ops := range doc.Paths {
		for method, op := range ops {
			role, _ := op["x-voltage-role"].(string)
			public := path == "/auth/login" || path == "/auth/refresh"
			if role == "" || (role == auth.Public.String()) != public {
				t.Errorf("%s %s has role %q", method, path, role)
			}
		}
	}
}

// TestServedSpecIsCheckedInSpec compares what a running hub serves (no token
// needed) with the checked-in documents.
func TestServedSpecIsCheckedInSpec(t *testing.T) {
	t.Setenv(auth.EnvAdminPassword, adminPassword)
	h := startHub(t, freeConfig(t))
	c := h.client(t)
	for path, file := range map[string]string{"/openapi.json": hub.SpecFile31, "/openapi-3.0.json": hub.SpecFile30} {
		body := c.must(200, "GET", path, nil, nil)
		want, err := os.ReadFile(filepath.Join("..", "..", "openapi", file))
		if err != nil {
			t.Fatal(err)
		}
		var a, b bytes.Buffer
		if err := json.Compact(&a, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&b, want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s differs from openapi/%s", path, file)
		}
	}
}
