package appliance

import "time"

// DefaultHeartbeatInterval is how often the site heartbeat (uplink.Status on
// ems.{site}.up.status, built by the bridge) is published.
const DefaultHeartbeatInterval = 5 * time.Second
