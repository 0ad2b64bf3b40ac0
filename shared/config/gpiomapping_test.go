package config

import (
	"strings"
	"testing"

	"github.com/voltageems/voltage/shared/point"
)

func gpioSite(signalMapping string) map[string]string {
	return map[string]string{
		"site.yaml":                           "site: {id: s}\n",
		"comsrv/channels.yaml":                "channels:\n  - {id: 7, name: io, protocol: gpio}\n",
		"comsrv/7/signal.csv":                 "point_id,signal_name\n1,door\n2,estop\n",
		"comsrv/7/mapping/signal_mapping.csv": signalMapping,
	}
}

func TestGPIOMapping(t *testing.T) {
	dir := writeSite(t, gpioSite("point_id,chip,line,gpio\n1,gpiochip0,17,529\n2,,,530\n"))
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Channel(7)
	if m := ch.Point(point.Signal, 1).GPIO; m == nil || m.Chip != "gpiochip0" || m.Line != 17 || m.GPIO != 529 {
		t.Fatalf("point 1: %+v", m)
	}
	if m := ch.Point(point.Signal, 2).GPIO; m == nil || m.Chip != "" || m.Line != -1 || m.GPIO != 530 {
		t.Fatalf("point 2: %+v", m)
	}
}

func TestGPIOMappingErrors(t *testing.T) {
	const file = "config/comsrv/7/mapping/signal_mapping.csv"
	for name, tc := range map[string]struct{ table, want string }{
		"nothing":       {"point_id,chip,line,gpio\n1,,,\n", file + ":2:"},
		"chip no line":  {"point_id,chip,line\n1,gpiochip0,\n", "give chip and line"},
		"line no chip":  {"point_id,chip,line,gpio\n1,,4,9\n", "chip and line go together"},
		"bad line":      {"point_id,chip,line\n1,gpiochip0,x\n", file + ":2:13: column \"line\""},
		"duplicate":     {"point_id,gpio\n1,3\n1,4\n", "second mapping row for point_id 1"},
		"unknown point": {"point_id,gpio\n5,3\n", "point_id 5 is not in"},
	} {
		t.Run(name, func(t *testing.T) {
			errs := strings.Join(loadErrors(t, writeSite(t, gpioSite(tc.table))), "\n")
			if !strings.Contains(errs, tc.want) {
				t.Fatalf("errors:\n%s\nwant %q", errs, tc.want)
			}
		})
	}
	files := gpioSite("point_id,gpio\n1,3\n")
	files["comsrv/7/telemetry.csv"] = "point_id,signal_name\n1,t\n"
	files["comsrv/7/mapping/telemetry_mapping.csv"] = "point_id,gpio\n1,4\n"
	if errs := strings.Join(loadErrors(t, writeSite(t, files)), "\n"); !strings.Contains(errs, "not telemetry points") {
		t.Fatalf("telemetry on gpio: %s", errs)
	}
}

func TestGPIOParams(t *testing.T) {
	p := GPIOParams{}
	if err := p.Validate(); err != nil || p.Backend != GPIOBackendCDev || p.SysfsRoot != "/sys/class/gpio" || p.Consumer != "comsrv" {
		t.Fatalf("defaults %+v %v", p, err)
	}
	if err := (&GPIOParams{Backend: "x"}).Validate(); err == nil {
		t.Fatal("unknown backend accepted")
	}
}

// FuzzGPIOMapping: no panic, accepted rows name a line for one backend at least.
func FuzzGPIOMapping(f *testing.F) {
	f.Add([]byte("point_id,chip,line,gpio\n1,gpiochip0,17,529\n2,,,530\n"))
	f.Add([]byte("point_id,gpio\n1,3\n1,4\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		l := &errList{}
		for id, m := range parseGPIOMapping("m.csv", point.Signal, src, l) {
			if m.GPIO < 0 && (m.Chip == "" || m.Line < 0) {
				t.Fatalf("point %d: accepted a row with no line: %+v", id, m)
			}
		}
	})
}
