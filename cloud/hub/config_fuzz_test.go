package hub_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/config"
)

// FuzzLoad: any cloud.yaml either loads or is refused with positioned errors;
// it never panics.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"", "nats: {client_addr: 127.0.0.1:0}\n", "sites:\n  - {id: a, leaf_password: x}\n",
		"streams: {max_age: 1h, max_bytes: -1}\n", "history: {backend: influx}\n", "nats: [\n",
		"registry: {heartbeat_interval: nonsense}\n", "auth: {access_ttl: 5m}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, hub.FileName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := hub.Load(dir)
		var le *config.LoadError
		if err != nil && (!errors.As(err, &le) || len(le.Errors) == 0) {
			t.Fatalf("Load error %v is not a positioned *config.LoadError", err)
		}
	})
}
