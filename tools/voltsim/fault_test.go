package voltsim_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/voltageems/voltage/tools/voltsim"
)

func TestFaultTimeout(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, 200*time.Millisecond)
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultTimeout}))
	if _, err := cl.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrRequestTimedOut) {
		t.Fatalf("under a timeout fault: %v, want a client timeout", err)
	}
	if n := len(sim.Requests(1)); n != 1 {
		t.Errorf("the unanswered request was not counted (%d requests)", n)
	}
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}))
	// The connection stayed open and carries no stale answer.
	if _, err := cl.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("after clearing the fault: %v", err)
	}
}

func TestFaultException(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	c1 := client(t, sim.Addr(1), 1, time.Second)
	c2 := client(t, sim.Addr(1), 2, time.Second)

	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultException})) // default code 04
	if _, err := c1.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrServerDeviceFailure) {
		t.Errorf("listener-wide exception: %v", err)
	}
	if err := c1.WriteRegister(52, 1); !errors.Is(err, modbus.ErrServerDeviceFailure) {
		t.Errorf("write under exception fault: %v", err)
	}
	if n := len(sim.Writes(1)); n != 0 {
		t.Errorf("a refused write was applied (%d writes)", n)
	}

	slave := uint8(2)
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}))
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultException, Slave: &slave, ExceptionCode: 6}))
	if _, err := c2.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); !errors.Is(err, modbus.ErrServerDeviceBusy) {
		t.Errorf("slave 2 under its own fault: %v, want device busy (06)", err)
	}
	if _, err := c1.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("slave 1 must be unaffected by slave 2's fault: %v", err)
	}
	if fs := sim.Faults(1); len(fs) != 1 || *fs[0].Slave != 2 || fs[0].ExceptionCode != 6 {
		t.Errorf("Faults = %+v", fs)
	}
	if err := sim.SetFault(1, voltsim.Fault{Mode: "melt"}); err == nil {
		t.Error("unknown fault mode accepted")
	}
	if err := sim.SetFault(9, voltsim.Fault{Mode: voltsim.FaultNone}); err == nil {
		t.Error("fault on an unknown channel accepted")
	}
}

func TestFaultDrop(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, time.Second)
	if _, err := cl.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Fatal(err)
	}
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDrop}))
	if _, err := cl.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err == nil || errors.Is(err, modbus.ErrRequestTimedOut) {
		t.Errorf("open connection under drop: %v, want it closed", err)
	}
	// New connections are closed as soon as they are accepted.
	raw, err := net.Dial("tcp", sim.Addr(1))
	if err == nil {
		_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = raw.Read(make([]byte, 1))
		_ = raw.Close()
		if !errors.Is(err, io.EOF) && !isReset(err) {
			t.Errorf("new connection under drop: read %v, want EOF or reset", err)
		}
	}
	// The other channel is untouched.
	if _, err := client(t, sim.Addr(2), 1, time.Second).ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("channel 2 while channel 1 drops: %v", err)
	}
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultNone}))
	if _, err := client(t, sim.Addr(1), 1, time.Second).ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Errorf("after clearing drop: %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func TestFaultDelay(t *testing.T) {
	sim := startSim(t, writeSite(t, deviceSite), voltsim.Options{})
	cl := client(t, sim.Addr(1), 1, 2*time.Second)
	const delay = 300 * time.Millisecond
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDelay, Delay: delay}))
	start := time.Now()
	if _, err := cl.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); err != nil {
		t.Fatalf("delayed read: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("answer came after %v, before the %v delay", took, delay)
	}
	if err := sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDelay}); err == nil {
		t.Error("delay without a duration accepted")
	}
}

// A delayed answer must not hold up shutdown.
func TestRunExitsWhileAnswersAreHeld(t *testing.T) {
	sim, err := voltsim.New(writeSite(t, deviceSite), voltsim.Options{ListenOverride: "127.0.0.1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	must(t, sim.SetFault(1, voltsim.Fault{Mode: voltsim.FaultDelay, Delay: time.Hour}))
	must(t, sim.SetFault(2, voltsim.Fault{Mode: voltsim.FaultTimeout}))
	c1 := client(t, sim.Addr(1), 1, 5*time.Second)
	c2 := client(t, sim.Addr(2), 1, 5*time.Second)
	errs := make(chan error, 2)
	go func() { _, err := c1.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); errs <- err }()
	go func() { _, err := c2.ReadRegisters(0, 1, modbus.HOLDING_REGISTER); errs <- err }()
	for _, ch := range []uint32{1, 2} {
		waitRequests(t, sim, ch, 1)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2 s of cancel")
	}
	for range 2 {
		if err := <-errs; err == nil || errors.Is(err, modbus.ErrRequestTimedOut) {
			t.Errorf("client of a stopped simulator: %v, want the connection closed", err)
		}
	}
	if _, err := net.Dial("tcp", sim.Addr(1)); err == nil {
		t.Error("listener still open after Run returned")
	}
}
