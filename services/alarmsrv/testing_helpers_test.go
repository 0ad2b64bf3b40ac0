package alarmsrv

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/statestore"
)

type statestoreMessage = statestore.Message

func decodeMsg(s string) (*statestore.Message, error) {
	m, err := statestore.DecodeMessage([]byte(s))
	return &m, err
}

func writeFiles(t testing.TB, dir string, fs map[string]string) {
	t.Helper()
	for name, content := range fs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func nowFunc() time.Time { return time.Unix(1_700_000_000, 0) }
