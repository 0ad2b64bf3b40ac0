package appliance

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/service"
)

// The words of VOLTAGE_EDGE_SERVICES that are not a service name.
const (
	AllServices = "all"  // every service in process: the default
	NoServices  = "none" // none in process: the appliance is NATS and the bridge
)

// ParseServices reads the services the appliance runs in its own process, as
// VOLTAGE_EDGE_SERVICES gives them: names separated by commas, in any order, a
// name given twice counting once. "", "all" → nil (every service); "none" → an
// empty, non-nil list. An unknown name, or "all"/"none" among names, is a
// *service.ConfigError naming it and the valid names.
func ParseServices(list string) ([]string, error) {
	switch strings.TrimSpace(list) {
	case "", AllServices:
		return nil, nil
	case NoServices:
		return []string{}, nil
	}
	chosen := map[string]bool{}
	for entry := range strings.SplitSeq(list, ",") {
		name := strings.TrimSpace(entry)
		switch {
		case name == "":
			continue
		case name == AllServices || name == NoServices:
			return nil, &service.ConfigError{Err: fmt.Errorf("services %q: %q stands alone, not among service names", list, name)}
		case !isEdgeService(name):
			return nil, unknownService(name)
		}
		chosen[name] = true
	}
	if len(chosen) == 0 {
		return nil, &service.ConfigError{Err: fmt.Errorf("services %q names no service; write %q to run none in process", list, NoServices)}
	}
	names := []string{}
	for _, name := range serviceNames() {
		if chosen[name] {
			names = append(names, name)
		}
	}
	return names, nil
}

func isEdgeService(name string) bool { return slices.Contains(serviceNames(), name) }

func unknownService(name string) error {
	return &service.ConfigError{Err: fmt.Errorf("unknown service %q; the edge services are %s (or %q, %q)",
		name, strings.Join(serviceNames(), ", "), AllServices, NoServices)}
}

// placement says where each service of the site runs: inside the appliance, or
// as its own process that the appliance finds at its listen address.
type placement struct {
	inProcess []edgeService
	external  map[string]net.Addr // service → the address its /readyz is probed at
}

// place splits the site's services by Config.Services (nil = all in process) and
// resolves the address of every external one. Errors are *service.ConfigError.
func place(site *config.Config, names []string) (placement, error) {
	p := placement{external: map[string]net.Addr{}}
	if names == nil {
		p.inProcess = edgeServices
		return p, nil
	}
	for _, name := range names {
		if !isEdgeService(name) {
			return p, unknownService(name)
		}
	}
	for _, svc := range edgeServices {
		if slices.Contains(names, svc.name) {
			p.inProcess = append(p.inProcess, svc)
			continue
		}
		addr, err := externalAddr(site, svc.name)
		if err != nil {
			return p, &service.ConfigError{Err: err}
		}
		p.external[svc.name] = addr
	}
	return p, nil
}

// inProcessList and externalList are for the start log, in the reporting order:
// "comsrv,modsrv" and "hissrv@127.0.0.1:6004", or "none".
func (p placement) inProcessList() string {
	names := make([]string, len(p.inProcess))
	for i, svc := range p.inProcess {
		names[i] = svc.name
	}
	return listOrNone(names)
}

func (p placement) externalList() string {
	var names []string
	for _, name := range serviceNames() {
		if addr, ok := p.external[name]; ok {
			names = append(names, name+"@"+addr.String())
		}
	}
	return listOrNone(names)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return NoServices
	}
	return strings.Join(names, ",")
}

// externalAddr is where the appliance finds a service that runs as its own
// process: its listen address (VOLTAGE_LISTEN_{NAME}, site.yaml listen.{name},
// DESIGN §9), the one its own binary binds, with an unspecified host (":6005",
// "0.0.0.0:6005") read as loopback. A host name (a container's, say) stays a name,
// looked up at every probe, since that process may start after the appliance.
func externalAddr(site *config.Config, name string) (net.Addr, error) {
	listen := site.Site.ListenAddr(name, service.DefaultAddrs[name])
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen.%s %q: %w", name, listen, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("listen.%s %q: %s runs outside the appliance, so it needs a fixed port 1..65535 to be found at", name, listen, name)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	hostPort := net.JoinHostPort(host, port)
	if ap, err := netip.ParseAddrPort(hostPort); err == nil {
		return net.TCPAddrFromAddrPort(ap), nil
	}
	return namedAddr(hostPort), nil
}

// namedAddr is a TCP address whose host is a name, resolved when dialled.
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }
