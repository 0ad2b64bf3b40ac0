package soak

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.firstOrder, b.firstOrder), cmp.Compare(a.secondOrder, b.secondOrder),
			strings.Compare(a.Process, b.Process), strings.Compare(a.Metric, b.Metric))
	})
}

// WriteTable prints the run's summary and one Markdown table row per series:
// first, last, min and max value, the fitted slope per hour after the warm-up,
// the allowed growth and whether it was flagged.
func WriteTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "soak: %d points/s target on %d channels, %s sampled in %d rounds, warm-up %s\n",
		r.Load.Rate, len(r.Load.Channels), r.Sampled.Round(time.Second), r.Rounds, r.Warmup.Round(time.Second))
	pct := 0.0
	if r.Load.Rate > 0 {
		pct = 100 * r.Achieved / float64(r.Load.Rate)
	}
	fmt.Fprintf(w, "achieved: %s points/s from the soak channels (%.1f %% of the target), %s points/s from all channels, %s voltage:changes entries/s\n",
		group(r.Achieved), pct, group(r.AchievedAll), strconv.FormatFloat(r.EntriesPerSec, 'f', 1, 64))
	if r.RateShort() {
		fmt.Fprintf(w, "\n!!! WARNING: the load reached only %.1f %% of its target (%s of %d points/s); the stack did not sustain it\n\n",
			pct, group(r.Achieved), r.Load.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| process | metric | first | last | min | max | slope/h | allowed growth | flagged |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, row := range r.Rows {
		f := func(v float64) string { return formatValue(row.Metric, v) }
		allowed, flagged := "—", "—"
		if row.HasRule {
			allowed = allowedText(row)
			switch {
			case !row.Trend.Judged:
				flagged = "too few samples"
			case row.Trend.Flagged:
				flagged = "**GROWS** (+" + f(row.Trend.Growth) + ")"
			default:
				flagged = "no"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Process, row.Metric,
			f(row.First), f(row.Last), f(row.Min), f(row.Max), slopeText(row), allowed, flagged)
	}
	if len(r.ScrapeErrors) > 0 {
		fmt.Fprintln(w, "\nendpoints that failed at least once (their series have gaps or are missing):")
		for _, k := range sortedKeys(r.ScrapeErrors) {
			fmt.Fprintf(w, "  %s: %s\n", k, r.ScrapeErrors[k])
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range r.Problems {
			fmt.Fprintln(w, "  "+p)
		}
	}
	switch {
	case r.Flagged():
		fmt.Fprintln(w, "\nverdict: FLAGGED (see the rows marked GROWS and the problems above)")
	default:
		fmt.Fprintln(w, "\nverdict: no series grew beyond its threshold after the warm-up")
	}
}

func slopeText(row Row) string {
	if !row.HasRule || !row.Trend.Judged {
		return "—"
	}
	s := formatValue(row.Metric, math.Abs(row.SlopePerHour))
	if row.SlopePerHour < 0 {
		return "−" + s
	}
	return "+" + s
}

func allowedText(row Row) string {
	abs := formatValue(row.Metric, row.Rule.Abs)
	if row.Rule.Rel == 0 {
		return "> " + abs
	}
	return fmt.Sprintf("> %.0f %% and > %s", 100*row.Rule.Rel, abs)
}

// formatValue writes bytes as MiB and everything else as a number.
func formatValue(metric string, v float64) string {
	switch {
	case strings.HasSuffix(metric, "_bytes"):
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB"
	case metric == MetricCPU:
		return strconv.FormatFloat(v, 'f', 1, 64) + " %"
	case math.Abs(v) >= 100 || v == math.Trunc(v):
		return group(v)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

// group writes a rounded number with thousands separators.
func group(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// progressLine summarises one round: the load, the biggest RSS, Redis and the lag.
func progressLine(samples []Sample) string {
	if len(samples) == 0 {
		return "no samples"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]", (time.Duration(samples[0].Elapsed) * time.Second).String())
	maxLag := -1.0
	for _, s := range samples {
		switch {
		case s.Process == ProcLoad && s.Metric == MetricPointsPS:
			fmt.Fprintf(&b, " load %s points/s", group(s.Value))
		case s.Metric == MetricRSS:
			fmt.Fprintf(&b, " %s %s", s.Process, formatValue(s.Metric, s.Value))
		case s.Process == "redis" && s.Metric == MetricUsedMemory:
			fmt.Fprintf(&b, " redis-used %s", formatValue(s.Metric, s.Value))
		case s.Metric == MetricStreamLen:
			fmt.Fprintf(&b, " stream %s", group(s.Value))
		case strings.HasPrefix(s.Metric, MetricLagPrefix):
			maxLag = math.Max(maxLag, s.Value)
		}
	}
	if maxLag >= 0 {
		fmt.Fprintf(&b, " max-lag %s", group(maxLag))
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
