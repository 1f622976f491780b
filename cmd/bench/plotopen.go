package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotOpen draws an -open report into an SVG file at path: above, the
// sustained capacity beside the closed loop's accepted rate and the two
// ceilings; below, the latencies against the offered rate, on a log
// scale: end-to-end p50, p99 and p999 and ack p99 at 50, 80 and 100 % of
// the capacity and in the overload, each sweep phase's end-to-end p99
// (a ring where the rate was sustained, a cross where not), the target
// and the capacity marked.
func plotOpen(r *report, path string) error {
	ol, c := r.Open, r.Capacity
	if c == nil || len(ol.Sweep) == 0 {
		return fmt.Errorf("plot: the open-loop report has no sweep")
	}

	rates, err := barPlot(fmt.Sprintf("Sustained capacity against the ceilings (%d cores, %gs a phase, %s arrivals; grey: measured as fast as %d closed-loop workers go)",
		r.Machine.Cores, r.Machine.PhaseSeconds, ol.Arrivals, r.Machine.Workers), "orders/s", []labelledBar{
		{fmt.Sprintf("sustained capacity\n(e2e p99 ≤ %g ms)", ol.TargetP99Ms), c.SustainedPerSecond, ourColor},
		{"closed loop\naccepted", c.AcceptedPerSecond, ceilingColor},
		{"durable ceiling\n(fsynced 202)", c.DurableCeilingPerSecond, ceilingColor},
		{"ceiling\n(bare 202)", c.CeilingPerSecond, ceilingColor},
	})
	if err != nil {
		return err
	}

	lat := plot.New()
	lat.Title.Text = "Latency against the offered rate (from the intended send time; log scale)"
	lat.X.Label.Text = "offered orders/s"
	lat.Y.Label.Text = "milliseconds"
	lat.Y.Scale = plot.LogScale{}
	lat.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	lat.X.Min = 0
	lat.Add(plotter.NewGrid())
	lat.Legend.Top, lat.Legend.Left = true, true
	// A log scale has no 0: a latency under 0.1 ms is drawn at 0.1 ms.
	y := func(v float64) float64 { return math.Max(v, 0.1) }
	lo, hi := ol.TargetP99Ms, ol.TargetP99Ms
	see := func(v float64) { lo, hi = math.Min(lo, y(v)), math.Max(hi, y(v)) }

	levels := slices.Clone(ol.Levels)
	if ol.OverloadPhase != nil {
		levels = append(levels, *ol.OverloadPhase)
	}
	for k, pc := range []struct {
		name  string
		of    func(openPhase) float64
		color color.Color
	}{
		{"end to end p50", func(f openPhase) float64 { return f.EndToEnd.P50 }, pctColors[0]},
		{"end to end p99", func(f openPhase) float64 { return f.EndToEnd.P99 }, pctColors[1]},
		{"end to end p999", func(f openPhase) float64 { return f.EndToEnd.P999 }, pctColors[2]},
		{"ack p99", func(f openPhase) float64 { return f.Ack.P99 }, ourColor},
	} {
		if len(levels) == 0 {
			break
		}
		xys := make(plotter.XYs, len(levels))
		for i, f := range levels {
			xys[i] = plotter.XY{X: f.OfferedPerSecond, Y: y(pc.of(f))}
			see(pc.of(f))
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		line.Color, points.Color = pc.color, pc.color
		if k == 3 {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		lat.Add(line, points)
		lat.Legend.Add(pc.name, line, points)
	}
	for _, sustained := range []bool{true, false} {
		var xys plotter.XYs
		for _, f := range ol.Sweep {
			if f.Sustained == sustained {
				xys = append(xys, plotter.XY{X: f.OfferedPerSecond, Y: y(f.EndToEnd.P99)})
				see(f.EndToEnd.P99)
			}
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(4), Shape: draw.RingGlyph{}}
		name := "sweep: e2e p99, sustained"
		if !sustained {
			sc.GlyphStyle.Shape = draw.CrossGlyph{}
			name = "sweep: e2e p99, not sustained"
		}
		lat.Add(sc)
		lat.Legend.Add(name, sc)
	}
	lat.Y.Min, lat.Y.Max = lo/2, hi*2
	xmax := 0.0
	for _, f := range append(slices.Clone(ol.Sweep), levels...) {
		xmax = math.Max(xmax, f.OfferedPerSecond)
	}
	lat.X.Max = xmax * 1.05
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: ol.TargetP99Ms}, {X: lat.X.Max, Y: ol.TargetP99Ms}})
	if err != nil {
		return err
	}
	target.Color, target.Dashes = color.Black, []vg.Length{vg.Points(2), vg.Points(2)}
	lat.Add(target)
	lat.Legend.Add(fmt.Sprintf("target: e2e p99 %g ms", ol.TargetP99Ms), target)
	if c.SustainedPerSecond > 0 {
		capLine, err := plotter.NewLine(plotter.XYs{{X: c.SustainedPerSecond, Y: lat.Y.Min}, {X: c.SustainedPerSecond, Y: lat.Y.Max}})
		if err != nil {
			return err
		}
		capLine.Color, capLine.Width = ourColor, vg.Points(2)
		lat.Add(capLine)
		lat.Legend.Add(fmt.Sprintf("sustained capacity %.0f/s", c.SustainedPerSecond), capLine)
	}
	return writeSVG(path, rates, lat)
}
