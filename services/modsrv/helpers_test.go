package modsrv_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/voltageems/voltage/services/modsrv"
	"github.com/voltageems/voltage/tools/sitetest"
)

// files is a site folder; see sitetest.Files for its placeholders.
type files = sitetest.Files

var merge = sitetest.Merge

func writeSite(t testing.TB, fs files, redisURL string) string {
	dir, _ := sitetest.Write(t, fs, redisURL)
	return dir
}

// stack is a test's running system: the site of sitetest (redis-server,
// optionally voltsim and comsrv) and modsrv, all on real sockets.
type stack struct {
	*sitetest.Site
	claimAge time.Duration // modsrv.Config.ActionClaimAge (0: the default)
	modsrv   *sitetest.Service
}

func newStack(t *testing.T, fs files) *stack {
	t.Helper()
	return &stack{Site: sitetest.New(t, fs)}
}

// startModsrv runs modsrv in this process and waits until it is ready.
func (s *stack) startModsrv() {
	s.T.Helper()
	s.modsrv = sitetest.Run(s.T, "modsrv", "/readyz", func(ctx context.Context, bound func(net.Addr)) error {
		return modsrv.Run(ctx, modsrv.Config{Site: s.Config, ConfigDir: s.Dir, HTTPAddr: "127.0.0.1:0",
			Log: sitetest.Logger(s.T), ConsumerName: "modsrv-test", ActionTimeout: 20 * time.Second, ActionClaimAge: s.claimAge,
			Bound: bound})
	})
}

// stop stops modsrv as SIGTERM would.
func (s *stack) stop() {
	if s.modsrv != nil {
		s.modsrv.Stop()
	}
}

func (s *stack) get(path string, out any) (int, string) {
	return s.call("GET", path, "", out)
}

func (s *stack) call(method, path, body string, out any) (int, string) {
	s.T.Helper()
	return s.modsrv.Call(method, path, body, out)
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
