package client_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// TestClientMatchesSpec fails when openapi-3.0.json changed after the client was
// generated: run `go generate ./...` in the openapi module.
func TestClientMatchesSpec(t *testing.T) {
	spec, err := os.ReadFile("../openapi-3.0.json")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("spec.sha256")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(spec)
	if got := hex.EncodeToString(h[:]); got != strings.TrimSpace(string(want)) {
		t.Fatal("the client was generated from another openapi-3.0.json; run go generate ./... in openapi/")
	}
}
