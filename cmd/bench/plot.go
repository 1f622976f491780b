package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// phaseLabels are the phases' names on the plot's axis.
var phaseLabels = map[string]string{
	"ceiling":         "ceiling\n(bare 202)",
	"durable_ceiling": "durable ceiling\n(fsynced 202)",
	"orderflow_peak":  "orderflow\nat its peak",
	"orderflow_half":  "orderflow\nat half",
	"seed_design":     "seed's design\n(same load)",
}

var (
	ceilingColor = color.RGBA{R: 160, G: 160, B: 160, A: 255}
	ourColor     = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	pctColors    = []color.Color{color.RGBA{R: 44, G: 160, B: 44, A: 255}, color.RGBA{R: 255, G: 127, B: 14, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255}}
)

// plotReport draws r's phases into an SVG file at path: above, the
// requests accepted per second of each phase, the ceilings in grey; below,
// their ack latency percentiles (p50, p90, p99).
func plotReport(r *report, path string) error {
	if r.Open != nil {
		return plotOpen(r, path)
	}
	if len(r.Phases) == 0 {
		return fmt.Errorf("plot: no phase was measured")
	}
	names := make([]string, len(r.Phases))
	for i, p := range r.Phases {
		names[i] = phaseLabels[p.Name]
		if names[i] == "" {
			names[i] = p.Name
		}
	}

	bars := make([]labelledBar, len(r.Phases))
	for i, p := range r.Phases {
		bars[i] = labelledBar{names[i], p.AcceptedPerSecond, ourColor}
		if p.Ceiling {
			bars[i].color = ceilingColor
		}
	}
	tput, err := barPlot(fmt.Sprintf("Accepted per second (%d cores, %d workers, %gs a phase; grey: the ceilings)", r.Machine.Cores, r.Machine.Workers, r.Machine.PhaseSeconds),
		"requests/s", bars)
	if err != nil {
		return err
	}

	lat := plot.New()
	lat.Title.Text = "Ack latency per phase (202 received)"
	lat.Y.Label.Text = "milliseconds"
	lat.Y.Min = 0
	lat.Add(plotter.NewGrid())
	bw := vg.Points(14)
	for k, pc := range []struct {
		name string
		of   func(phase) float64
	}{{"p50", func(p phase) float64 { return p.P50ms }}, {"p90", func(p phase) float64 { return p.P90ms }}, {"p99", func(p phase) float64 { return p.P99ms }}} {
		vals := make(plotter.Values, len(r.Phases))
		for i, p := range r.Phases {
			vals[i] = pc.of(p)
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = pctColors[k]
		bars.Offset = vg.Length(k-1) * bw
		lat.Add(bars)
		lat.Legend.Add(pc.name, bars)
	}
	lat.Legend.Top = true
	lat.NominalX(names...)
	lat.Y.Max *= 1.1

	return writeSVG(path, tput, lat)
}

// labelledBar is one bar of barPlot: its name under it, its value, drawn
// above it, and its colour.
type labelledBar struct {
	name  string
	v     float64
	color color.Color
}

// barPlot draws one bar per entry of bars, each with its value above it.
func barPlot(title, yLabel string, bars []labelledBar) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	p.Add(plotter.NewGrid()) // first: behind the bars
	names := make([]string, len(bars))
	for i, b := range bars {
		names[i] = b.name
		vals := make(plotter.Values, len(bars))
		vals[i] = b.v
		bc, err := plotter.NewBarChart(vals, vg.Points(36))
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = b.color
		p.Add(bc)
		label, err := plotter.NewLabels(plotter.XYLabels{XYs: []plotter.XY{{X: float64(i), Y: b.v}}, Labels: []string{fmt.Sprintf("%.0f", b.v)}})
		if err != nil {
			return nil, err
		}
		label.Offset = vg.Point{X: -vg.Points(10), Y: vg.Points(3)}
		p.Add(label)
	}
	p.NominalX(names...)
	p.Y.Max *= 1.1 // room for the figures above the bars
	return p, nil
}

// writeSVG draws plots one above the other into an SVG file at path.
func writeSVG(path string, plots ...*plot.Plot) error {
	width, height := 9*vg.Inch, 8*vg.Inch
	c := vgsvg.New(width, height)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 6, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
