// The token-timeline plot: the served token's time left with every token
// request marked by outcome (top), and the credential's state (bottom).

package main

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawTimeline draws t's two panels, aligned on one time axis, into c.
func drawTimeline(c draw.Canvas, t *timeline, sub string) error {
	top, err := plotTimeLeft(t, sub)
	if err != nil {
		return err
	}
	bottom, err := plotStates(t)
	if err != nil {
		return err
	}
	end := math.Ceil(t.Points[len(t.Points)-1].At.Seconds())
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Min, p.X.Max = 0, end
		p.X.Tick.Marker = secondTicks{}
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Millimeter * 3, PadTop: vg.Millimeter, PadBottom: vg.Millimeter,
		PadLeft: vg.Millimeter, PadRight: vg.Millimeter * 3}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, c)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	return nil
}

// plotTimeLeft is the top panel: the served token's time left as polled,
// token requests as points (ok: circles, failed: crosses), the outage
// shaded.
func plotTimeLeft(t *timeline, sub string) (*plot.Plot, error) {
	p := newPlot("Token timeline of config A ("+sub+")", "served token's time left (s)")
	var left plotter.XYs
	top := 0.0
	for _, pt := range t.Points {
		left = append(left, plotter.XY{X: pt.At.Seconds(), Y: pt.ExpiresIn})
		top = max(top, pt.ExpiresIn)
	}
	top = max(top, 1) * 1.45 // room for the legend
	p.Y.Max = top
	if t.OutageTo > t.OutageFrom {
		band, err := shade(t.OutageFrom.Seconds(), t.OutageTo.Seconds(), 0, top)
		if err != nil {
			return nil, err
		}
		band.Color = outageColor
		p.Add(band)
		p.Legend.Add("token endpoint down", band)
	}
	line, err := plotter.NewLine(left)
	if err != nil {
		return nil, err
	}
	line.Color = configColors["A"]
	line.Width = vg.Points(1.2)
	p.Add(line)
	p.Legend.Add("time left (polled every 250 ms)", line)

	var ok, failed plotter.XYs
	for _, ev := range t.events() {
		xy := plotter.XY{X: ev.At.Seconds(), Y: ev.ExpiresIn}
		if ev.OK {
			ok = append(ok, xy)
		} else {
			failed = append(failed, xy)
		}
	}
	for _, s := range []struct {
		xys   plotter.XYs
		name  string
		glyph draw.GlyphStyle
	}{
		{ok, "token request: ok", draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: vg.Points(3.5), Color: okColor}},
		{failed, "token request: failed", draw.GlyphStyle{Shape: draw.CrossGlyph{}, Radius: vg.Points(4), Color: failColor}},
	} {
		if len(s.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(s.xys)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = s.glyph
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("%s (%d)", s.name, len(s.xys)), sc)
	}
	p.Legend.Top = true
	p.Legend.Left = false
	return p, nil
}

// plotStates is the bottom panel: the credential's state over time, one
// row per state, coloured bands where it held.
func plotStates(t *timeline) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "seconds since Caddy started"
	p.Y.Label.Text = "state"
	row := map[string]int{}
	for i, s := range stateOrder {
		row[s] = i
	}
	for i := 0; i < len(t.Points); i++ {
		// A band runs from a poll to the next poll in another state.
		j := i
		for j+1 < len(t.Points) && t.Points[j+1].State == t.Points[i].State {
			j++
		}
		from := t.Points[i].At.Seconds()
		to := from + pollEvery.Seconds()
		if j+1 < len(t.Points) {
			to = t.Points[j+1].At.Seconds()
		}
		r, known := row[t.Points[i].State]
		if !known {
			r = row["starting"]
		}
		band, err := shade(from, to, float64(r)-0.35, float64(r)+0.35)
		if err != nil {
			return nil, err
		}
		band.Color = stateColors[stateOrder[r]]
		p.Add(band)
		i = j
	}
	p.NominalY(stateOrder...)
	p.Y.Min, p.Y.Max = -0.5, float64(len(stateOrder))-0.5
	return p, nil
}

// shade is a filled rectangle without outline.
func shade(x0, x1, y0, y1 float64) (*plotter.Polygon, error) {
	poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
	if err != nil {
		return nil, err
	}
	poly.LineStyle.Width = 0
	return poly, nil
}

// secondTicks labels a time axis in whole seconds, a label every 1, 2, 5,
// 10, 20, ... seconds so that there are at most 12.
type secondTicks struct{}

// Ticks implements plot.Ticker.
func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for i := 0; (hi-lo)/step > 12; i++ {
		step *= []float64{2, 2.5, 2}[i%3]
	}
	var ts []plot.Tick
	for x := math.Ceil(lo/step) * step; x <= hi; x += step {
		ts = append(ts, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
	}
	return ts
}
