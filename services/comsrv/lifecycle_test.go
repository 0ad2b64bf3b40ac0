package comsrv_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voltageems/voltage/shared/keyspace"
	"github.com/voltageems/voltage/shared/point"
)

// TestBinaryReloadsOnSIGHUPAndStopsCleanlyOnSIGTERM runs the comsrv binary as an
// operator would: a SIGHUP after an edit starts the new channel, SIGTERM stops it
// within a few seconds and leaves its channels marked down and comm_lost.
func TestBinaryReloadsOnSIGHUPAndStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := buildComsrv(t)
	virtual := func(id string) string {
		return "  - {id: " + id + ", name: v" + id + ", protocol: virtual, enabled: true, parameters: {poll_interval_ms: 50, generators: [{type: T, point: 1, kind: constant, value: " + id + "}]}}\n"
	}
	s := startSite(t, files{
		"comsrv/channels.yaml":   "channels:\n" + virtual("1"),
		"comsrv/1/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n",
		"comsrv/2/telemetry.csv": pointHeader + "1,a,1,0,,0,float,\n",
	})
	var stderr strings.Builder
	cmd := s.comsrvProcess(bin, &stderr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.waitField(keyspace.ChannelPoints(1, point.Telemetry), "1", "1")

	writeFile(t, s.dir, "comsrv/channels.yaml", "channels:\n"+virtual("1")+virtual("2"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitField(keyspace.ChannelPoints(2, point.Telemetry), "1", "2")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("comsrv exited with %v on SIGTERM:\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("comsrv did not stop within 5 s of SIGTERM")
	}
	for _, ch := range []uint32{1, 2} {
		if st := s.hget(keyspace.ChannelStatus(ch), "state"); st != "down" {
			t.Errorf("channel %d state %q after stop, want down", ch, st)
		}
		if q := s.hget(keyspace.ChannelQuality(ch, point.Telemetry), "1"); q != "comm_lost" {
			t.Errorf("channel %d point quality %q after stop, want comm_lost", ch, q)
		}
	}
}
