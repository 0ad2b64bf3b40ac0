package hissrv

import (
	"context"
	"time"

	"github.com/voltageems/voltage/services/hissrv/embedded"
	"github.com/voltageems/voltage/services/hissrv/influx"
	"github.com/voltageems/voltage/services/hissrv/sample"
)

// EmbeddedName is the embedded backend's name; its consumer group is hissrv:embedded.
const EmbeddedName = "embedded"

// GroupPrefix starts every hissrv consumer group name.
const GroupPrefix = "hissrv:"

type embeddedBackend struct{ store *embedded.Store }

func (b embeddedBackend) Name() string { return EmbeddedName }

func (b embeddedBackend) Write(ctx context.Context, s []sample.Sample) (WriteResult, error) {
	st, err := b.store.Write(ctx, s)
	return WriteResult{Written: st.Appended, Repeated: st.Repeats + st.Rejected}, err
}

func (b embeddedBackend) Tick(ctx context.Context, now time.Time, caughtUp bool) error {
	_, err := b.store.Tick(ctx, now, caughtUp)
	return err
}

// Close leaves the store open: Run closes it after the query API stopped.
func (b embeddedBackend) Close() error { return nil }

type influxBackend struct{ *influx.Backend }

func (b influxBackend) Write(ctx context.Context, s []sample.Sample) (WriteResult, error) {
	n, skipped, err := b.Backend.Write(ctx, s)
	return WriteResult{Written: n, Repeated: skipped}, err
}

func (b influxBackend) Tick(context.Context, time.Time, bool) error { return nil }
