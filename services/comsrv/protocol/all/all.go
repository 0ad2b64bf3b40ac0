// Package all links every protocol driver into a binary.
package all

import (
	_ "github.com/voltageems/voltage/services/comsrv/protocol/modbus"  // modbus_tcp
	_ "github.com/voltageems/voltage/services/comsrv/protocol/virtual" // virtual
)
