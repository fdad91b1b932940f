// SVG plots of the results, drawn with gonum.org/v1/plot: throughput and
// latency of A, B and C, and config A's token timeline.

package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotFile is one written plot, for the report's links.
type plotFile struct {
	Name  string // file name inside the plots directory
	Title string
}

// configNames are the legend names of the configs.
var configNames = map[string]string{
	"A": "A: groupid_auth",
	"B": "B: static header_up",
	"C": "C: direct (no proxy)",
}

// Colours: one per config, and the token timeline's.
var (
	configColors = map[string]color.Color{
		"A": color.RGBA{0x1f, 0x77, 0xb4, 0xff},
		"B": color.RGBA{0xff, 0x7f, 0x0e, 0xff},
		"C": color.RGBA{0x99, 0x99, 0x99, 0xff},
	}
	okColor     = color.RGBA{0x1b, 0x9e, 0x4b, 0xff}
	failColor   = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	outageColor = color.RGBA{0xff, 0xd0, 0xd0, 0xff}
	stateColors = map[string]color.Color{
		"valid":       color.RGBA{0x74, 0xc4, 0x76, 0xff},
		"refreshing":  color.RGBA{0x6b, 0xae, 0xd6, 0xff},
		"starting":    color.RGBA{0xbb, 0xbb, 0xbb, 0xff},
		"degraded":    color.RGBA{0xff, 0xb0, 0x20, 0xff},
		"unavailable": color.RGBA{0xef, 0x3b, 0x2c, 0xff},
		"rejected":    color.RGBA{0x80, 0x00, 0x40, 0xff},
	}
	// stateOrder is the state band's rows, bottom to top.
	stateOrder = []string{"rejected", "unavailable", "degraded", "starting", "refreshing", "valid"}
)

// writePlots draws every plot the results allow into dir and returns them.
func (b *bench) writePlots(dir string) ([]plotFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []plotFile
	add := func(name, title string, w, h vg.Length, render func(draw.Canvas) error) error {
		if err := saveSVG(filepath.Join(dir, name), w, h, render); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, plotFile{name, title})
		return nil
	}
	if b.tp != nil && len(b.tp.Runs) > 0 {
		sub := fmt.Sprintf("wrk -t%d -c%d, %d rounds", b.o.threads, b.o.conns, b.o.rounds)
		if err := add("throughput.svg", "Throughput of A, B and C", 16*vg.Centimeter, 10*vg.Centimeter,
			single(func() (*plot.Plot, error) { return plotThroughput(b.tp.Runs, sub) })); err != nil {
			return out, err
		}
		if err := add("latency.svg", "Latency percentiles of A, B and C", 16*vg.Centimeter, 10*vg.Centimeter,
			single(func() (*plot.Plot, error) { return plotLatency(b.tp.Runs, sub) })); err != nil {
			return out, err
		}
	}
	if b.econ != nil && b.econ.Timeline != nil && len(b.econ.Timeline.Points) > 0 {
		e := b.econ
		sub := fmt.Sprintf("%d req/s for %s, tokens living %s", e.Rate, e.Dur, e.Lifetime)
		if err := add("token-timeline.svg", "Token timeline of config A", 24*vg.Centimeter, 14*vg.Centimeter,
			func(c draw.Canvas) error { return drawTimeline(c, e.Timeline, sub) }); err != nil {
			return out, err
		}
	}
	return out, nil
}

// saveSVG renders into a new SVG canvas of w x h and writes it to path.
func saveSVG(path string, w, h vg.Length, render func(draw.Canvas) error) error {
	c := vgsvg.New(w, h)
	if err := render(draw.New(c)); err != nil {
		return err
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

// single renders one plot on the whole canvas.
func single(mk func() (*plot.Plot, error)) func(draw.Canvas) error {
	return func(c draw.Canvas) error {
		p, err := mk()
		if err != nil {
			return err
		}
		p.Draw(c)
		return nil
	}
}

// byConfig groups runs by config, in the order A, B, C, skipping absent ones.
func byConfig(runs []tpRun) (names []string, groups [][]tpRun) {
	for _, c := range []string{"A", "B", "C"} {
		var g []tpRun
		for _, r := range runs {
			if r.Config == c {
				g = append(g, r)
			}
		}
		if len(g) > 0 {
			names, groups = append(names, c), append(groups, g)
		}
	}
	return names, groups
}

// plotThroughput draws each config's median req/s as a bar and every
// round's req/s as a point on it.
func plotThroughput(runs []tpRun, sub string) (*plot.Plot, error) {
	p := newPlot("Throughput, median of rounds ("+sub+")", "requests per second")
	names, groups := byConfig(runs)
	var labels []string
	var points plotter.XYs
	for i, c := range names {
		var rps []float64
		for j, r := range groups[i] {
			rps = append(rps, r.Res.RPS)
			// Spread the points a little so equal values stay visible.
			off := 0.12 * (float64(j) - float64(len(groups[i])-1)/2) / float64(max(len(groups[i]), 1))
			points = append(points, plotter.XY{X: float64(i) + off, Y: r.Res.RPS})
		}
		bars, err := configBars(c, plotter.Values{median(rps)}, vg.Points(60))
		if err != nil {
			return nil, err
		}
		bars.XMin = float64(i)
		p.Add(bars)
		labels = append(labels, configNames[c])
	}
	sc, err := plotter.NewScatter(points)
	if err != nil {
		return nil, err
	}
	sc.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: vg.Points(3), Color: color.Black}
	p.Add(sc)
	p.Legend.Add("one round", sc)
	p.NominalX(labels...)
	p.Legend.Top = true
	p.Legend.Left = false
	p.Y.Max = maxY(points) * 1.3 // room for the legend
	return p, nil
}

// plotLatency draws p50, p90 and p99 (medians of rounds) per config as
// grouped bars, in milliseconds.
func plotLatency(runs []tpRun, sub string) (*plot.Plot, error) {
	p := newPlot("Latency, median of rounds ("+sub+")", "latency (ms)")
	names, groups := byConfig(runs)
	const w = 28
	top := 0.0
	for i, c := range names {
		var p50, p90, p99 []float64
		for _, r := range groups[i] {
			p50 = append(p50, ms(r.Res.P50))
			p90 = append(p90, ms(r.Res.P90))
			p99 = append(p99, ms(r.Res.P99))
		}
		vals := plotter.Values{median(p50), median(p90), median(p99)}
		bars, err := configBars(c, vals, vg.Points(w))
		if err != nil {
			return nil, err
		}
		bars.Offset = vg.Points(w * (float64(i) - float64(len(names)-1)/2))
		p.Add(bars)
		p.Legend.Add(configNames[c], bars)
		for _, v := range vals {
			top = max(top, v)
		}
	}
	p.NominalX("p50", "p90", "p99")
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Max = top * 1.35
	return p, nil
}

// newPlot is a plot with a title and a Y axis from 0.
func newPlot(title, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	return p
}

// configBars are bars in config c's colour, without outline.
func configBars(c string, vals plotter.Values, width vg.Length) (*plotter.BarChart, error) {
	bars, err := plotter.NewBarChart(vals, width)
	if err != nil {
		return nil, err
	}
	bars.Color = configColors[c]
	bars.LineStyle.Width = 0
	return bars, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func maxY(xys plotter.XYs) float64 {
	m := 0.0
	for _, xy := range xys {
		m = max(m, xy.Y)
	}
	return m
}
