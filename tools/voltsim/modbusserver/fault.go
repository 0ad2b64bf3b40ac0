package modbusserver

import (
	"fmt"
	"time"
)

// FaultMode is how the server misbehaves.
type FaultMode string

// Fault modes.
const (
	FaultNone      FaultMode = "none"      // answer normally
	FaultTimeout   FaultMode = "timeout"   // read the request, never answer
	FaultException FaultMode = "exception" // answer with Fault.Exception
	FaultDrop      FaultMode = "drop"      // close the connection
	FaultDelay     FaultMode = "delay"     // answer after Fault.Delay
	FaultCRC       FaultMode = "crc"       // RTU only: answer with a corrupted CRC (TCP answers normally)
)

// Fault is a misbehaviour injected on purpose. With Unit nil it applies to the whole
// listener; with Unit set it applies to requests for that unit only, and takes
// precedence over a listener-wide fault.
type Fault struct {
	Mode      FaultMode
	Unit      *uint8
	Exception Exception     // FaultException; 0 means ServerDeviceFailure
	Delay     time.Duration // FaultDelay
}

// Validate reports what is wrong with f.
func (f Fault) Validate() error {
	switch f.Mode {
	case FaultNone, FaultTimeout, FaultDrop, FaultCRC:
	case FaultException:
		if f.Exception > 0x7F {
			return fmt.Errorf("fault: exception code %d above 127", f.Exception)
		}
	case FaultDelay:
		if f.Delay <= 0 {
			return fmt.Errorf("fault: delay mode needs a positive delay")
		}
	default:
		return fmt.Errorf("fault: unknown mode %q (want none, timeout, exception, drop, delay or crc)", f.Mode)
	}
	return nil
}

// faults holds the active faults of one listener; the Server's mutex guards it.
type faults struct {
	all    Fault
	byUnit map[uint8]Fault
}

// set records f. "none" without a unit clears every fault; "none" with a unit clears
// that unit's own fault, so the listener-wide fault applies to it again.
func (fs *faults) set(f Fault) {
	if fs.byUnit == nil {
		fs.byUnit = make(map[uint8]Fault)
	}
	if f.Mode == FaultException && f.Exception == 0 {
		f.Exception = ServerDeviceFailure
	}
	switch {
	case f.Unit == nil && f.Mode == FaultNone:
		fs.all = Fault{Mode: FaultNone}
		clear(fs.byUnit)
	case f.Unit == nil:
		fs.all = f
	case f.Mode == FaultNone:
		delete(fs.byUnit, *f.Unit)
	default:
		u := *f.Unit
		f.Unit = &u // do not alias the caller's variable
		fs.byUnit[u] = f
	}
}

// lookup returns the fault that applies to a request for unit.
func (fs *faults) lookup(unit uint8) Fault {
	if f, ok := fs.byUnit[unit]; ok {
		return f
	}
	if fs.all.Mode == "" {
		return Fault{Mode: FaultNone}
	}
	return fs.all
}

// dropsAll reports whether the listener refuses every connection.
func (fs *faults) dropsAll() bool { return fs.all.Mode == FaultDrop }
