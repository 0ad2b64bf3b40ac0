package apigateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/services/apigateway"
)

// TestShippedSettingsAreTheDefaults loads config/apigateway/apigateway.yaml: it
// must be valid and say exactly what the defaults are.
func TestShippedSettingsAreTheDefaults(t *testing.T) {
	got, err := apigateway.LoadSettings(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	want := apigateway.DefaultSettings()
	if got.AccessTTL != "15m" || got.RefreshTTL != "12h" || got.BcryptCost != want.BcryptCost ||
		got.Login != (apigateway.LoginSettings{MaxFailures: 5, Lockout: "15m", PerAddressPerMinute: 30}) ||
		got.WebSocket.MaxClients != want.WebSocket.MaxClients || got.MaxBodyBytes != want.MaxBodyBytes {
		t.Fatalf("shipped settings %+v differ from the defaults %+v", got, want)
	}
}

func TestBadSettings(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"acess_ttl: 1m\n", "apigateway.yaml:1:1"},
		{"access_ttl: 2h\n", "access_ttl"},
		{"access_ttl: soon\n", "access_ttl"},
		{"bcrypt_cost: 4\n", "bcrypt_cost"},
		{"login: {max_failures: -1}\n", "login.max_failures"},
		{"cors: {allowed_origins: ['*']}\n", "cors.allowed_origins"},
		{"cors: {allowed_origins: ['https://a.example/']}\n", "cors.allowed_origins"},
		{"tls: {cert_file: a.pem}\n", "tls"},
		{"websocket: {write_timeout: 1ms}\n", "websocket.write_timeout"},
		{"max_body_bytes: 10\n", "max_body_bytes"},
		{"access_ttl: [1]\n", "apigateway.yaml:1"},
	} {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "apigateway"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, apigateway.SettingsFile), []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := apigateway.LoadSettings(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to name %q", c.yaml, err, c.want)
		}
	}
	// No file: the defaults.
	if _, err := apigateway.LoadSettings(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
