package modbus

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/tools/voltsim/modbusserver"
)

func rtuChannel(t *testing.T, params string) *config.Channel {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"site.yaml":                              "site: {id: t}\n",
		"comsrv/channels.yaml":                   "channels:\n  - {id: 1, name: bus, protocol: modbus_rtu, parameters: " + params + "}\n",
		"comsrv/1/telemetry.csv":                 "point_id,signal_name\n1,x\n",
		"comsrv/1/mapping/telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type\n1,1,3,0,uint16\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Channels[0]
}

// TestRS485ModeOnAPortWithoutItIsALinkError: a pseudo-terminal has no RS-485 mode,
// so asking for it fails the connect with an error that says what to change.
func TestRS485ModeOnAPortWithoutItIsALinkError(t *testing.T) {
	p, err := modbusserver.OpenPTY()
	if err != nil {
		t.Fatalf("pseudo-terminal: %v", err)
	}
	defer p.Close()
	d, err := NewRTU(rtuChannel(t, "{device: '"+p.SlavePath+"', rs485: {enabled: true}}"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Connect(context.Background(), nil)
	if err == nil {
		_ = d.Close()
		t.Fatal("RS-485 mode on a pty succeeded")
	}
	if !strings.Contains(err.Error(), "TIOCSRS485") || !strings.Contains(err.Error(), "rs485.enabled false") {
		t.Fatalf("error %v, want one naming TIOCSRS485 and the fix", err)
	}
	// Without RS-485 mode the same port opens.
	d, err = NewRTU(rtuChannel(t, "{device: '"+p.SlavePath+"', baud_rate: 19200, parity: none}"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(context.Background(), nil); err != nil {
		t.Fatalf("connect: %v", err)
	}
	_ = d.Close()
}

func TestRTUParameterErrors(t *testing.T) {
	for params, want := range map[string]string{
		"{}":                              "device is required",
		"{device: /dev/x, baud_rate: 7}":  "baud_rate",
		"{device: /dev/x, parity: space}": "parity",
		"{device: /dev/x, max_registers: 0, max_bits: 3000}": "max_bits",
	} {
		if _, err := NewRTU(rtuChannel(t, params), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", params, err, want)
		}
	}
}
