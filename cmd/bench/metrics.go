package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsPage is one reading of a /metrics endpoint, parsed by
// Prometheus' own text-format parser.
type metricsPage map[string]*dto.MetricFamily

// scrape reads and parses a process's /metrics (base is its URL).
func scrape(base string) (metricsPage, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (metricsPage, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return metricsPage(fams), nil
}

// labelList is a series' labels as the text format writes them, sorted
// by name: caller="orderflow",operation="PutItem" (the key of series).
func labelList(m *dto.Metric) string {
	ls := slices.Clone(m.GetLabel())
	slices.SortFunc(ls, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return strings.Join(parts, ",")
}

// value is a counter's, gauge's or untyped series' value.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// series is the value of each series of the counter or gauge name, by
// its label list.
func (p metricsPage) series(name string) map[string]float64 {
	out := map[string]float64{}
	if f := p[name]; f != nil {
		for _, m := range f.GetMetric() {
			out[labelList(m)] += value(m)
		}
	}
	return out
}

// sum is the sum of the counter or gauge name over its series, and the
// series that match keep (nil: all).
func (p metricsPage) sum(name string, keep func(labels map[string]string) bool) float64 {
	var s float64
	if f := p[name]; f != nil {
		for _, m := range f.GetMetric() {
			if keep != nil {
				ls := map[string]string{}
				for _, l := range m.GetLabel() {
					ls[l.GetName()] = l.GetValue()
				}
				if !keep(ls) {
					continue
				}
			}
			s += value(m)
		}
	}
	return s
}

// histograms are the sums and counts of the named histograms, by
// name_sum or name_count and the label list in braces when there is one:
// sqlite_write_wait_seconds_count{until="fsync"}.
func (p metricsPage) histograms(names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, name := range names {
		f := p[name]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			ls := labelList(m)
			if ls != "" {
				ls = "{" + ls + "}"
			}
			out[name+"_sum"+ls] = h.GetSampleSum()
			out[name+"_count"+ls] = float64(h.GetSampleCount())
		}
	}
	return out
}

// writerHistograms are the SQLite writer's histograms that printWriter
// reads.
var writerHistograms = []string{"sqlite_write_wait_seconds", "sqlite_wal_fsync_seconds", "sqlite_transaction_writes"}

// processed sums orders_processed_total over its labels.
func (p metricsPage) processed() float64 { return p.sum("orders_processed_total", nil) }

// processed scrapes the processor and sums orders_processed_total.
func processed(proc string) (float64, error) {
	p, err := scrape(proc)
	if err != nil {
		return 0, err
	}
	return p.processed(), nil
}
