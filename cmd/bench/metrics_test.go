package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The page of a real registry, served by promhttp as orderflow serves it,
// reads back as the bench's figures: the label lists that costOf splits,
// the writer's histogram sums and counts, the sums over labels.
func TestMetricsPageReadsWhatPromhttpServes(t *testing.T) {
	reg := prometheus.NewRegistry()
	aws := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aws_requests_total", Help: "h"}, []string{"service", "operation", "outcome", "caller"})
	aws.WithLabelValues("dynamodb", "PutItem", "success", "orderflow").Add(3)
	aws.WithLabelValues("sqs", "ReceiveMessage", "success", "orderflow").Add(2)
	processedC := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orders_processed_total", Help: "h"}, []string{"env", "status"})
	processedC.WithLabelValues("local", "success").Add(7)
	processedC.WithLabelValues("local", "rejected").Add(2)
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sqlite_write_wait_seconds", Help: "h"}, []string{"until"})
	wait.WithLabelValues("fsync").Observe(0.002)
	wait.WithLabelValues("fsync").Observe(0.004)
	fsync := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sqlite_wal_fsync_seconds", Help: "h"})
	fsync.Observe(0.001)
	status := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "h"}, []string{"method", "route", "code"})
	status.WithLabelValues("GET", "/orders/{id}/status", "200").Add(5)
	status.WithLabelValues("POST", "/orders", "202").Add(9)
	reg.MustRegister(aws, processedC, wait, fsync, status)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	p, err := scrape(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.series("aws_requests_total"); got[series("orderflow", "dynamodb", "PutItem", "success")] != 3 || got[series("orderflow", "sqs", "ReceiveMessage", "success")] != 2 || len(got) != 2 {
		t.Errorf("aws_requests_total series: %v", got)
	}
	if got := p.processed(); got != 9 {
		t.Errorf("processed %v, want 9", got)
	}
	h := p.histograms(writerHistograms...)
	if h[`sqlite_write_wait_seconds_count{until="fsync"}`] != 2 || h[`sqlite_write_wait_seconds_sum{until="fsync"}`] != 0.006 || h["sqlite_wal_fsync_seconds_count"] != 1 {
		t.Errorf("histograms: %v", h)
	}
	if got := p.sum("http_requests_total", func(l map[string]string) bool { return l["route"] == "/orders/{id}/status" }); got != 5 {
		t.Errorf("status requests %v, want 5", got)
	}
	if _, err := parseMetrics(httptest.NewRecorder().Result().Body); err != nil {
		t.Errorf("an empty page: %v", err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("orders_processed_total{ 1\n")) }))
	defer bad.Close()
	if _, err := scrape(bad.URL); err == nil {
		t.Error("a malformed page parsed")
	}
}
