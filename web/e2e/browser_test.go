package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chromiumPath is the browser the test drives; VOLTAGE_CHROMIUM overrides it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VOLTAGE_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("chromium is not installed at %s: apt-get install chromium (or set VOLTAGE_CHROMIUM to a Chromium binary)", p)
	}
	return p
}

// TestBrowser starts a whole site — Redis, voltsim's devices, comsrv, modsrv,
// alarmsrv, hissrv, rulesrv and the gateway serving the embedded UI — and runs
// e2e/browser.mjs (playwright-core driving chromium) against it. Screenshots
// are left in web/test-artifacts/.
//
// With VOLTAGE_WEB_HOLD=1 the site stays up (until the test's -timeout) instead
// of running the browser, for working on the UI against it:
//
//	VOLTAGE_WEB_HOLD=1 go test -run TestBrowser -timeout 0 ./web/e2e
func TestBrowser(t *testing.T) {
	hold := os.Getenv("VOLTAGE_WEB_HOLD") != ""
	var browser string
	if !hold {
		needNode(t)
		browser = chromiumPath(t)
	}
	st := startStack(t)
	if hold {
		fmt.Printf("gateway %s  admin/%s  olga/%s  victor/%s  control %s\n", st.url, adminPassword, operatorPassword, viewerPassword, st.control)
		<-t.Context().Done()
		return
	}
	artifacts := filepath.Join(webDir(t), "test-artifacts")
	out, err := run(t.Context(), webDir(t), 4*time.Minute, []string{
		"VOLTAGE_URL=" + st.url,
		"VOLTAGE_CONTROL_URL=" + st.control,
		"VOLTAGE_ARTIFACTS=" + artifacts,
		"VOLTAGE_CHROMIUM=" + browser,
		"VOLTAGE_ADMIN_PASSWORD=" + adminPassword,
		"VOLTAGE_OPERATOR_PASSWORD=" + operatorPassword,
		"VOLTAGE_VIEWER_PASSWORD=" + viewerPassword,
	}, "node", "e2e/browser.mjs")
	if err != nil {
		t.Fatalf("browser test: %v\n%s\n(screenshots in %s)", err, out, artifacts)
	}
	t.Log(out)
}
