// Package influx is hissrv's InfluxDB 2 backend: samples as line protocol
// (measurement voltage_point, tags site/channel|instance/type/point, fields value
// and quality) written with influxdb-client-go's blocking API, in batches,
// gzipped. A write that fails is retried by hissrv's pipeline, which holds the
// acknowledgements meanwhile; InfluxDB overwrites a point written twice with the
// same series and time, so a re-delivery after a crash leaves no duplicate.
//
// Any server speaking the same /api/v2/write (VictoriaMetrics does; the tests use
// it) works as well.
package influx

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/voltageems/voltage/services/hissrv/sample"
)

// Options configure one server.
type Options struct {
	Name        string // backend name, e.g. influx-main
	URL         string
	Token       string
	Org         string
	Bucket      string
	Measurement string // default voltage_point
	Site        string // the site tag
	BatchSize   int    // lines per request; default 5000
	Gzip        bool
	Timeout     time.Duration // per request; default 10 s
}

// Backend writes to one InfluxDB 2 server.
type Backend struct {
	opts   Options
	client influxdb2.Client
	write  api.WriteAPIBlocking
	lines  []string
	buf    []byte
}

// New creates the backend; it does not connect (the first write does).
func New(opts Options) *Backend {
	if opts.Measurement == "" {
		opts.Measurement = "voltage_point"
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	o := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetUseGZip(opts.Gzip).
		SetHTTPRequestTimeout(uint(max(1, opts.Timeout/time.Second))).
		SetApplicationName("voltage-hissrv")
	c := influxdb2.NewClientWithOptions(opts.URL, opts.Token, o)
	return &Backend{opts: opts, client: c, write: c.WriteAPIBlocking(opts.Org, opts.Bucket)}
}

// Name is the backend's name.
func (b *Backend) Name() string { return b.opts.Name }

// Write sends the samples in requests of at most BatchSize lines. It returns nil
// only when the server accepted every request. Samples whose value InfluxDB
// cannot store (NaN, ±Inf) are skipped and counted.
func (b *Backend) Write(ctx context.Context, samples []sample.Sample) (written, skipped int, err error) {
	b.lines = b.lines[:0]
	for i := range samples {
		s := &samples[i]
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			skipped++
			continue
		}
		b.lines = append(b.lines, b.Line(s))
		if len(b.lines) == b.opts.BatchSize {
			if err := b.send(ctx); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := b.send(ctx); err != nil {
		return 0, 0, err
	}
	return len(samples) - skipped, skipped, nil
}

func (b *Backend) send(ctx context.Context) error {
	if len(b.lines) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout+time.Second)
	defer cancel()
	if err := b.write.WriteRecord(ctx, b.lines...); err != nil {
		return fmt.Errorf("write %d lines to %s: %w", len(b.lines), b.opts.URL, err)
	}
	b.lines = b.lines[:0]
	return nil
}

// Line renders one sample as line protocol with a millisecond timestamp.
func (b *Backend) Line(s *sample.Sample) string {
	buf := b.buf[:0]
	buf = appendEscaped(buf, b.opts.Measurement, measurementEscapes)
	buf = append(buf, ",site="...)
	buf = appendEscaped(buf, b.opts.Site, tagEscapes)
	// Tags: site, channel or instance, point, type (InfluxDB sorts them itself).
	if s.Point.Instance {
		buf = append(buf, ",instance="...)
		buf = strconv.AppendUint(buf, uint64(s.Point.ID), 10)
		buf = append(buf, ",point="...)
		buf = appendEscaped(buf, s.Point.Field, tagEscapes)
	} else {
		buf = append(buf, ",channel="...)
		buf = strconv.AppendUint(buf, uint64(s.Point.ID), 10)
		buf = append(buf, ",point="...)
		buf = appendEscaped(buf, s.Point.Field, tagEscapes)
	}
	buf = append(buf, ",type="...)
	buf = appendEscaped(buf, s.Point.Family, tagEscapes)
	buf = append(buf, " value="...)
	buf = strconv.AppendFloat(buf, s.Value, 'g', -1, 64)
	buf = append(buf, ",quality="...)
	buf = strconv.AppendInt(buf, int64(s.Quality), 10)
	buf = append(buf, 'i', ' ')
	buf = strconv.AppendInt(buf, s.TS, 10)
	b.buf = buf
	return string(buf)
}

var (
	measurementEscapes = strings.NewReplacer(",", `\,`, " ", `\ `)
	tagEscapes         = strings.NewReplacer(",", `\,`, " ", `\ `, "=", `\=`)
)

func appendEscaped(dst []byte, s string, r *strings.Replacer) []byte {
	// Newlines would end the line; they cannot be escaped in line protocol.
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if strings.HasSuffix(s, `\`) {
		s += " "
	}
	return append(dst, r.Replace(s)...)
}

// Close releases the client.
func (b *Backend) Close() error {
	b.client.Close()
	return nil
}
