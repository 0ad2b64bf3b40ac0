package can

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.einride.tech/can"

	"github.com/voltageems/voltage/services/comsrv/protocol"
	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/point"
)

// memBus is a Bus in memory: the test feeds frames and errors, and sees what the
// driver sends.
type memBus struct {
	in     chan can.Frame
	fail   chan error
	mu     sync.Mutex
	sent   []can.Frame
	closed chan struct{}
	once   sync.Once
}

func newMemBus() *memBus {
	return &memBus{in: make(chan can.Frame, 16), fail: make(chan error, 1), closed: make(chan struct{})}
}

func (b *memBus) Receive() (can.Frame, error) {
	select {
	case f := <-b.in:
		return f, nil
	case err := <-b.fail:
		return can.Frame{}, err
	case <-b.closed:
		return can.Frame{}, io.EOF
	}
}

func (b *memBus) Transmit(_ context.Context, f can.Frame) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, f)
	return nil
}

func (b *memBus) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// recorder is a protocol.Sink.
type recorder struct {
	mu      sync.Mutex
	samples map[point.ID]point.Sample
	fails   map[point.ID]point.Quality
}

func (r *recorder) Sample(_ point.Type, s point.Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples[s.ID] = s
	delete(r.fails, s.ID)
}

func (r *recorder) Fail(_ point.Type, id point.ID, q point.Quality, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails[id] = q
}

func (r *recorder) get(id point.ID) (point.Sample, point.Quality, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.samples[id]
	return s, r.fails[id], ok
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func loadChannel(t *testing.T, files map[string]string) *config.Channel {
	t.Helper()
	dir := t.TempDir()
	files["site.yaml"] = "site: {id: t}\n"
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

func TestDriverLastFrameWinsStaleWritesAndBusOff(t *testing.T) {
	ch := loadChannel(t, map[string]string{
		"comsrv/channels.yaml":                    "channels:\n  - {id: 1, name: b, protocol: can, parameters: {transport: udp, address: '239.1.2.3:4000', timeout_ms: 200}}\n",
		"comsrv/1/telemetry.csv":                  "point_id,signal_name,scale\n1,a,1\n2,b,2\n",
		"comsrv/1/mapping/telemetry_mapping.csv":  "point_id,can_id,start_bit,bit_length,byte_order,signed\n1,0x10,0,8,le,0\n2,0x1ABCDEF,7,16,be,1\n",
		"comsrv/1/adjustment.csv":                 "point_id,signal_name\n1,sp\n2,sp2\n",
		"comsrv/1/mapping/adjustment_mapping.csv": "point_id,can_id,start_bit,bit_length,byte_order,signed,scale\n1,0x20,0,16,le,1,0.1\n2,0x20,16,8,le,0,1\n",
	})
	bus := newMemBus()
	d, err := New(ch, slog.New(slog.DiscardHandler), func(context.Context, config.CANParams) (Bus, error) { return bus, nil })
	if err != nil {
		t.Fatal(err)
	}
	sink := &recorder{samples: map[point.ID]point.Sample{}, fails: map[point.ID]point.Quality{}}
	ctx := context.Background()
	if err := d.Connect(ctx, sink); err != nil {
		t.Fatal(err)
	}
	bus.in <- can.Frame{ID: 0x10, Length: 1, Data: can.Data{5}}
	bus.in <- can.Frame{ID: 0x10, Length: 1, Data: can.Data{7}}                                  // the last frame wins
	bus.in <- can.Frame{ID: 0x1ABCDEF, IsExtended: true, Length: 2, Data: can.Data{0xFF, 0xFE}}  // -2, ×2
	bus.in <- can.Frame{ID: 0x1ABCDEF, IsExtended: false, Length: 2, Data: can.Data{0x00, 0x10}} // same number, standard: not ours
	waitUntil(t, "both points", func() bool {
		a, _, _ := sink.get(1)
		b, _, _ := sink.get(2)
		return a.Value == 7 && b.Value == -4
	})
	bus.in <- can.Frame{ID: 0x1ABCDEF, IsExtended: true, Length: 1, Data: can.Data{0x01}} // too short
	waitUntil(t, "invalid short frame", func() bool { _, q, _ := sink.get(2); return q == point.Invalid })

	// No frame for longer than timeout_ms: Poll reports the point stale.
	start := time.Now()
	waitUntil(t, "point 1 to go stale", func() bool {
		if err := d.Poll(ctx, sink); err != nil {
			t.Fatal(err)
		}
		_, q, _ := sink.get(1)
		return q == point.Stale
	})
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("stale after %v, before the 200 ms timeout", waited)
	}

	// Writes keep the frame's other signal.
	sp := ch.Point(point.Adjustment, 1)
	sp2 := ch.Point(point.Adjustment, 2)
	if err := d.Write(ctx, sp2, 9); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, sp, -12.3); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, sp, 1e9); err == nil {
		t.Fatal("a value outside the signal's range was sent")
	}
	bus.mu.Lock()
	last := bus.sent[len(bus.sent)-1]
	bus.mu.Unlock()
	if len(bus.sent) != 2 || last.ID != 0x20 || last.Length != 3 || last.Data[0] != 0x85 || last.Data[1] != 0xFF || last.Data[2] != 9 {
		t.Fatalf("sent %v, want 0x20 [85 FF 09]", bus.sent)
	}
	if err := d.Write(ctx, ch.Point(point.Telemetry, 1), 1); !errors.Is(err, protocol.ErrReadOnly) {
		t.Fatalf("write of a telemetry point: %v", err)
	}

	bus.fail <- ErrBusOff
	waitUntil(t, "bus-off to reach Poll", func() bool { return d.Poll(ctx, sink) != nil })
	if err := d.Poll(ctx, sink); !errors.Is(err, ErrBusOff) {
		t.Fatalf("Poll after bus-off: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	base := map[string]string{
		"comsrv/1/telemetry.csv": "point_id,signal_name\n1,Nope\n",
	}
	for name, tc := range map[string]struct{ params, want string }{
		"no dbc, no row": {"{transport: udp, address: '239.1.2.3:4000'}", "no CAN mapping row"},
		"unknown signal": {"{transport: udp, address: '239.1.2.3:4000', dbc_file: x.dbc}", "no signal"},
		"bad address":    {"{transport: udp, address: '10.0.0.1:4000'}", "multicast"},
		"bad bitrate":    {"{interface: can0, bitrate: 123}", "bitrate"},
		"no interface":   {"{}", "interface is required"},
	} {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{
				"comsrv/channels.yaml": "channels:\n  - {id: 1, name: b, protocol: can, parameters: " + tc.params + "}\n",
				"comsrv/1/x.dbc":       "VERSION \"\"\n\nBO_ 1 M: 8 X\n SG_ Yes : 0|8@1+ (1,0) [0|1] \"\" Vector__XXX\n",
			}
			for k, v := range base {
				files[k] = v
			}
			_, err := New(loadChannel(t, files), slog.New(slog.DiscardHandler), Dial)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestInterfaceDownIsALinkError(t *testing.T) {
	err := interfaceUp("nosuchcan9")
	if err == nil || !strings.Contains(err.Error(), "nosuchcan9") {
		t.Fatalf("missing interface: %v", err)
	}
}
