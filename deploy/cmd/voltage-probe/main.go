// Command voltage-probe is the health check of the VoltageEMS container images: it
// asks one URL and exits 0 when the answer is 2xx, 1 otherwise. The images have no
// shell, curl or wget, so Docker's HEALTHCHECK runs this instead.
//
// The URL is the first argument, else VOLTAGE_PROBE_URL, else the first line of
// /etc/voltage-probe-url (written by deploy/docker/Dockerfile from binaries.tsv).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// EnvURL overrides the probe URL baked into the image.
const EnvURL = "VOLTAGE_PROBE_URL"

// urlFile is where the image keeps its probe URL.
const urlFile = "/etc/voltage-probe-url"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	url, err := probeURL(args, urlFile)
	if err != nil {
		fmt.Fprintf(stderr, "voltage-probe: %v\n", err)
		return 1
	}
	if err := probe(url, 4*time.Second); err != nil {
		fmt.Fprintf(stderr, "voltage-probe: %v\n", err)
		return 1
	}
	return 0
}

func probeURL(args []string, file string) (string, error) {
	if len(args) > 1 {
		return "", fmt.Errorf("usage: voltage-probe [URL]")
	}
	if len(args) == 1 {
		return args[0], nil
	}
	if v := os.Getenv(EnvURL); v != "" {
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("no URL given (argument, %s or %s): %w", EnvURL, file, err)
	}
	url, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if url == "" || url == "-" {
		return "", fmt.Errorf("%s names no URL", file)
	}
	return url, nil
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("probe %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
