package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/testharness"
)

// Load is the soak's extra devices: Channels Modbus TCP channels that voltsim
// serves, each polled once a second, together holding Rate telemetry points
// whose values change on every poll. Every point is a uint16 input register
// named soak_volt_<n> at scale 0.01: voltsim gives it the voltage profile (230 V
// ± 0.5 % noise, a new value every 200 ms of its clock), so nearly every poll
// reads a new raw value for every point and comsrv writes Rate changes a second.
type Load struct {
	Rate     int // point updates a second, in all
	Channels []LoadChannel
}

// LoadChannel is one soak device.
type LoadChannel struct {
	ID     uint32
	Points int
}

// Soak channels start at this id, clear of the demo site's channels.
const firstLoadChannel = 100

// maxPointsPerChannel keeps a channel's poll at four Modbus reads of 125 registers.
const maxPointsPerChannel = 500

// pollMS is the soak channels' poll interval: one read of every point a second.
const pollMS = 1000

// NewLoad spreads rate points over as few channels as hold them.
func NewLoad(rate int) (Load, error) {
	if rate <= 0 {
		return Load{}, fmt.Errorf("load: rate must be > 0 points/s, got %d", rate)
	}
	n := (rate + maxPointsPerChannel - 1) / maxPointsPerChannel
	l := Load{Rate: rate}
	for i := range n {
		pts := rate / n
		if i < rate%n {
			pts++
		}
		l.Channels = append(l.Channels, LoadChannel{ID: uint32(firstLoadChannel + i), Points: pts})
	}
	return l, nil
}

// Labels are the soak channels as comsrv labels its metrics.
func (l Load) Labels() map[string]bool {
	out := map[string]bool{}
	for _, c := range l.Channels {
		out[strconv.FormatUint(uint64(c.ID), 10)] = true
	}
	return out
}

// Prepare adds the soak channels to the site copy in siteDir, caps
// voltage:changes at changesMaxLen entries (0 keeps the site's cap), and checks
// that the result loads.
func (l Load) Prepare(siteDir string, changesMaxLen int64) error {
	chans := config.ChannelsFile(siteDir)
	b, err := os.ReadFile(chans)
	if err != nil {
		return fmt.Errorf("read the site's channels: %w", err)
	}
	var add strings.Builder
	for _, c := range l.Channels {
		port, err := testharness.PortBelowEphemeral()
		if err != nil {
			return fmt.Errorf("a port for soak channel %d: %w", c.ID, err)
		}
		fmt.Fprintf(&add, "\n  - id: %d\n    name: soak%d\n    description: Soak load, %d changing registers\n"+
			"    protocol: modbus_tcp\n    enabled: true\n"+
			"    parameters: {host: 127.0.0.1, port: %d, poll_interval_ms: %d, timeout_ms: 1000}\n",
			c.ID, c.ID, c.Points, port, pollMS)
		if err := writeChannelTables(filepath.Join(siteDir, "comsrv", strconv.Itoa(int(c.ID))), c.Points); err != nil {
			return fmt.Errorf("soak channel %d: %w", c.ID, err)
		}
	}
	if !strings.HasSuffix(string(b), "\n") {
		b = append(b, '\n')
	}
	if err := os.WriteFile(chans, append(b, add.String()...), 0o644); err != nil {
		return fmt.Errorf("write the site's channels: %w", err)
	}
	if err := l.selectForMQTT(filepath.Join(siteDir, "netsrv", "netsrv.yaml")); err != nil {
		return err
	}
	if changesMaxLen > 0 {
		if err := setChangesMaxLen(filepath.Join(siteDir, "site.yaml"), changesMaxLen); err != nil {
			return err
		}
	}
	cfg, err := config.Load(siteDir)
	if err != nil {
		return fmt.Errorf("the site copy with the soak channels does not load: %w", err)
	}
	for _, c := range l.Channels {
		if ch := cfg.Channel(c.ID); ch == nil {
			return fmt.Errorf("soak channel %d is not in the loaded site (channels.yaml no longer ends with its channel list?)", c.ID)
		}
	}
	return nil
}

func writeChannelTables(dir string, points int) error {
	if err := os.MkdirAll(filepath.Join(dir, "mapping"), 0o755); err != nil {
		return err
	}
	var tel, mapping strings.Builder
	tel.WriteString("point_id,signal_name,scale,offset,unit,reverse,data_type,description\n")
	mapping.WriteString("point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n")
	for i := 1; i <= points; i++ {
		fmt.Fprintf(&tel, "%d,soak_volt_%d,0.01,0,V,0,float,Soak load\n", i, i)
		fmt.Fprintf(&mapping, "%d,1,4,%d,uint16,AB,\n", i, i-1)
	}
	if err := os.WriteFile(filepath.Join(dir, "telemetry.csv"), []byte(tel.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "mapping", "telemetry_mapping.csv"), []byte(mapping.String()), 0o644)
}

// setChangesMaxLen rewrites the changes_maxlen line of site.yaml.
func setChangesMaxLen(path string, n int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read site.yaml: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, ln := range lines {
		if k := strings.Index(ln, "changes_maxlen:"); k >= 0 {
			lines[i] = ln[:k] + "changes_maxlen: " + strconv.FormatInt(n, 10)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s has no changes_maxlen line to set (the demo site changed; update tools/soak)", path)
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}

// mqttSelect is the first selection of netsrv's "local" MQTT link in the demo
// site (the first link of netsrv.yaml), which tools/chaos turns on.
const mqttSelect = "    select:\n      - {channel: 1, types: [T, S]}\n"

// selectForMQTT adds the soak channels to the selection of netsrv's "local" link,
// so the load also goes through netsrv to the broker.
func (l Load) selectForMQTT(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read netsrv.yaml: %w", err)
	}
	s := string(b)
	link := strings.Index(s, "- name: local\n")
	end := len(s)
	if link >= 0 {
		if next := strings.Index(s[link+1:], "- name: "); next >= 0 {
			end = link + 1 + next
		}
	}
	i := strings.Index(s, mqttSelect)
	if link < 0 || i < link || i > end {
		return fmt.Errorf("%s: the local link's select no longer reads %q (the demo site changed; update tools/soak)", path, mqttSelect)
	}
	var add strings.Builder
	for _, c := range l.Channels {
		fmt.Fprintf(&add, "      - {channel: %d, types: [T]}\n", c.ID)
	}
	at := i + len(mqttSelect)
	return os.WriteFile(path, []byte(s[:at]+add.String()+s[at:]), 0o644)
}
