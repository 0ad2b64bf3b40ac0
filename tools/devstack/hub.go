package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/shared/auth"
)

// Hub is the cloud hub of a local stack with one site. The site joins as a leaf
// node with its own password, as in production (docs/cloud.md); only TLS is left
// out on one machine.
type Hub struct {
	// Dir is the hub's folder: cloud.yaml is written there, its stores go to data/.
	Dir string
	// ClientAddr, LeafAddr and HTTPAddr are where it listens for NATS clients,
	// for the sites' leaf nodes and for its API and fleet dashboard.
	ClientAddr, LeafAddr, HTTPAddr string
	// AdminPassword is the password of the cloud API's user admin.
	AdminPassword string
	// SiteID, SiteName and SitePassword are the one site; the configuration gets
	// the bcrypt hash of SitePassword, at BcryptCost (0: bcrypt.DefaultCost).
	SiteID, SiteName, SitePassword string
	BcryptCost                     int
}

// StartHub writes the hub's cloud.yaml and starts bin (the voltage-cloud binary)
// as the process "cloud". It does not wait: LeafAddr accepts leaf nodes soon,
// HubTrustKey answers once the hub's stores are open.
func StartHub(procs *Procs, bin string, h Hub) (*Proc, error) {
	cost := h.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(h.SitePassword), cost)
	if err != nil {
		return nil, fmt.Errorf("hash the site's leaf password: %w", err)
	}
	if err := WriteFile(filepath.Join(h.Dir, "cloud.yaml"), fmt.Sprintf(
		"# written by tools/devstack\nnats: {client_addr: %q, leaf_addr: %q, store_dir: %q}\nhttp: {addr: %q}\n"+
			"sites:\n  - {id: %q, name: %q, leaf_password: %q}\n",
		h.ClientAddr, h.LeafAddr, filepath.Join(h.Dir, "data"), h.HTTPAddr,
		h.SiteID, h.SiteName, hash)); err != nil {
		return nil, fmt.Errorf("cloud hub configuration: %w", err)
	}
	return procs.Start("cloud", bin, h.Dir, []string{auth.EnvAdminPassword + "=" + h.AdminPassword}, "--config", h.Dir)
}

// HubTrustKey reads the cloud hub's delegation key (GET /trust-key), waiting while
// the hub starts and opens its stores (503). A hub that answers it is up.
func HubTrustKey(ctx context.Context, hubHTTP string, timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		var body struct {
			PublicKey string `json:"public_key"`
		}
		resp, err := client.Get("http://" + hubHTTP + "/trust-key")
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&body)
			} else {
				err = fmt.Errorf("answered %s", resp.Status)
			}
			resp.Body.Close()
			if err == nil && body.PublicKey != "" {
				return body.PublicKey, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("cloud hub http://%s/trust-key: no key within %s: %v", hubHTTP, timeout, err)
		}
		if err := Sleep(ctx, 200*time.Millisecond); err != nil {
			return "", fmt.Errorf("waiting for the cloud hub: %w", err)
		}
	}
}
