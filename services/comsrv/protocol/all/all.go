// Package all links every protocol driver into a binary.
package all

import (
	_ "github.com/voltageems/voltage/services/comsrv/protocol/can"     // can
	_ "github.com/voltageems/voltage/services/comsrv/protocol/gpio"    // gpio
	_ "github.com/voltageems/voltage/services/comsrv/protocol/iec104"  // iec104
	_ "github.com/voltageems/voltage/services/comsrv/protocol/modbus"  // modbus_tcp, modbus_rtu, modbus_rtu_over_tcp
	_ "github.com/voltageems/voltage/services/comsrv/protocol/virtual" // virtual
)
