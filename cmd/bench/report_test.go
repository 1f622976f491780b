package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testReport() *report {
	r := &report{Machine: machine{Cores: 2, Workers: 64, PhaseSeconds: 10, Mode: "embedded"}}
	lat := func(ms ...int) []time.Duration {
		var ds []time.Duration
		for _, m := range ms {
			ds = append(ds, time.Duration(m)*time.Millisecond)
		}
		return ds
	}
	r.Phases = []phase{
		phaseOf("ceiling", true, 0, result{ok: 100000, elapsed: 10 * time.Second, lat: lat(1, 1, 2, 9)}, 3*time.Second),
		phaseOf("durable_ceiling", true, 0, result{ok: 60000, elapsed: 10 * time.Second, lat: lat(2, 3, 3, 12)}, 0),
		phaseOf("orderflow_peak", false, 0, result{ok: 30000, errs: 2, elapsed: 10 * time.Second, lat: lat(4, 5, 8, 30)}, 0),
		phaseOf("orderflow_half", false, 1500, result{ok: 15000, elapsed: 10 * time.Second, lat: lat(2, 2, 3, 6)}, 0),
	}
	return r
}

// The JSON report has every phase with its figures under stable names.
func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Machine struct{ Cores int }
		Phases  []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Machine.Cores != 2 || len(got.Phases) != 4 {
		t.Fatalf("report %s", b.String())
	}
	peak := got.Phases[2]
	if peak["name"] != "orderflow_peak" || peak["accepted_per_second"] != 3000.0 || peak["errors"] != 2.0 || peak["p50_ms"] != 5.0 || peak["ceiling"] != false {
		t.Errorf("peak phase %v", peak)
	}
	if got.Phases[0]["server_cpu_per_request_us"] != 30.0 {
		t.Errorf("ceiling's server CPU per request %v, want 30 µs", got.Phases[0]["server_cpu_per_request_us"])
	}
}

// The plot is an SVG document with every phase named on it and the
// throughput of each written above its bar.
func TestPlotReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.svg")
	if err := plotReport(testReport(), path); err != nil {
		t.Fatal(err)
	}
	all := svgTexts(t, path)
	for _, want := range []string{"ceiling", "durable ceiling", "at its peak", "at half", "10000", "6000", "3000", "1500", "p50", "p90", "p99", "Accepted per second"} {
		if !strings.Contains(all, want) {
			t.Errorf("the plot does not show %q (its texts: %q)", want, all)
		}
	}
	if err := plotReport(&report{}, path); err == nil {
		t.Error("an empty report plotted")
	}
}

// svgTexts reads the SVG file at path, fails t unless it is an SVG
// document, and returns its texts joined by spaces.
func svgTexts(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	dec := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the plot is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	return strings.Join(texts, " ")
}

func TestStepperOnlyOnATerminal(t *testing.T) {
	var b bytes.Buffer
	s := newStepper(&b, false)
	s.step("ceiling", time.Second)
	s.clear()
	if b.Len() != 0 {
		t.Errorf("not a terminal: %q", b.String())
	}
	s = newStepper(&b, true)
	s.step("ceiling", time.Second)
	s.clear()
	if b.String() != "\r\033[K… ceiling (1s)\r\033[K" {
		t.Errorf("a terminal: %q", b.String())
	}
}

func TestPortRange(t *testing.T) {
	t.Setenv("BENCH_PORTS", "22150-22160")
	a, b := freeAddr(), freeAddr()
	if a == b || !strings.HasPrefix(a, "127.0.0.1:221") || !strings.HasPrefix(b, "127.0.0.1:221") {
		t.Errorf("addresses %s %s, want two in 22150-22160", a, b)
	}
	for _, bad := range []string{"", "x-y", "10-5", "0-10", "1-70000"} {
		if _, _, ok := portRange(bad); ok {
			t.Errorf("portRange(%q) ok", bad)
		}
	}
}
