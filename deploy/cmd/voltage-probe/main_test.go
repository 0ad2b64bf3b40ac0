package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Error(w, "redis: connection refused", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	var stderr bytes.Buffer
	if code := run([]string{srv.URL + "/readyz"}, &stderr); code != 0 {
		t.Errorf("ready: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{srv.URL + "/down"}, &stderr); code != 1 || !strings.Contains(stderr.String(), "503") || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("not ready: exit %d, %q", code, stderr.String())
	}
	t.Setenv(EnvURL, srv.URL+"/readyz")
	if code := run(nil, &stderr); code != 0 {
		t.Errorf("%s: exit %d", EnvURL, code)
	}
	for _, args := range [][]string{{"a", "b"}, {"http://127.0.0.1:1/readyz"}, {"::bad"}} {
		if code := run(args, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
}

func TestProbeURLFile(t *testing.T) {
	t.Setenv(EnvURL, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "voltage-probe-url")
	if err := os.WriteFile(file, []byte("http://127.0.0.1:6001/readyz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if url, err := probeURL(nil, file); err != nil || url != "http://127.0.0.1:6001/readyz" {
		t.Errorf("probeURL = %q, %v", url, err)
	}
	if url, err := probeURL([]string{"http://x/healthz"}, file); err != nil || url != "http://x/healthz" {
		t.Errorf("an argument does not win over the file: %q, %v", url, err)
	}
	for _, content := range []string{"-\n", "", "\n"} {
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if url, err := probeURL(nil, file); err == nil {
			t.Errorf("file %q gave the URL %q", content, url)
		}
	}
	if _, err := probeURL(nil, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file gave a URL")
	}
}
