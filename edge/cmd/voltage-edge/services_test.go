package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/edge/appliance"
	"github.com/voltageems/voltage/shared/service"
	"github.com/voltageems/voltage/shared/testharness"
)

// TestBinaryEdgeServices runs voltage-edge with VOLTAGE_EDGE_SERVICES: a bad list
// is refused with exit code 2 naming the bad entry and the valid names; "none"
// runs the appliance with every service expected as its own process.
func TestBinaryEdgeServices(t *testing.T) {
	rd := testharness.StartRedis(t)
	bin := testharness.BuildBinary(t, ".")
	dir := t.TempDir()
	// No listen section: the external services are expected at DESIGN §9's ports.
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte("site: {id: bin-site}\nredis: {url: "+rd.URL()+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(services string) []string {
		return append(os.Environ(), "VOLTAGE_HTTP_ADDR=127.0.0.1:0", "VOLTAGE_NATS_URL=nats://127.0.0.1:0",
			service.EnvEdgeServices+"="+services)
	}

	for services, want := range map[string]string{
		"comsrv,bogus": `unknown service \"bogus\"; the edge services are comsrv, modsrv, hissrv, rulesrv, alarmsrv, apigateway, netsrv`,
		"none,hissrv":  `\"none\" stands alone`,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, "--config", dir)
		cmd.Dir = t.TempDir()
		cmd.Env = env(services)
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != service.ExitConfig ||
			!strings.Contains(string(out), service.EnvEdgeServices) || !strings.Contains(string(out), want) {
			t.Errorf("%s=%s: exit %v, output:\n%s\nwant exit code 2 and %s", service.EnvEdgeServices, services, err, out, want)
		}
	}

	cmd := exec.Command(bin, "--config", dir, "--log-format", "text")
	cmd.Dir = t.TempDir()
	cmd.Env = env("none")
	proc, httpAddr := testharness.StartLogged(t, cmd, regexp.MustCompile(`msg="edge appliance running".* http=(\S+)`), 20*time.Second)
	placed := regexp.MustCompile(`msg="edge services placed" .*in_process=none external=comsrv@127\.0\.0\.1:6001,modsrv@`)
	if logs := proc.Logs(); !placed.MatchString(logs) {
		t.Errorf("no log of where the services run:\n%s", logs)
	}
	testharness.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + httpAddr + "/status")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var st appliance.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return fmt.Errorf("decode /status: %w", err)
		}
		for name, want := range map[string]string{"comsrv": "127.0.0.1:6001", "apigateway": "127.0.0.1:6005", "alarmsrv": "127.0.0.1:6007"} {
			if got := st.Services[name]; got.InProcess || got.HTTP != want {
				return fmt.Errorf("/status %s = %+v, want external at %s", name, got, want)
			}
		}
		return nil
	})
	if err := proc.Stop(t, syscall.SIGTERM, 5*time.Second); err != nil {
		t.Errorf("voltage-edge exited with %v; logs:\n%s", err, proc.Logs())
	}
}
