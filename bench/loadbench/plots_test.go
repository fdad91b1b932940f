package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticBench is a bench with two rounds of A, B and C and a token
// timeline of 3 ok token requests, then 2 failed ones during an outage and
// an ok one after it.
func syntheticBench() (*bench, *timeline) {
	o, err := parseFlags(nil)
	if err != nil {
		panic(err)
	}
	b := &bench{o: o, tp: &throughputResult{}}
	for r := 1; r <= 2; r++ {
		for i, c := range []string{"A", "B", "C"} {
			f := float64(i + r)
			b.tp.Runs = append(b.tp.Runs, tpRun{Round: r, Config: c, Label: c, Res: &wrkResult{
				RPS: 10000 + 500*f, P50: time.Duration(2+f) * time.Millisecond,
				P90: time.Duration(5+f) * time.Millisecond, P99: time.Duration(9+f) * time.Millisecond}})
		}
	}
	tl := &timeline{Start: time.Unix(1_700_000_000, 0)}
	at := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
	req := func(ok, failed uint64) map[string]uint64 {
		m := map[string]uint64{"password/ok": ok}
		if failed > 0 {
			m["refresh_token/transient"] = failed
		}
		return m
	}
	// One poll every 250 ms for 20 s.
	for ms := 0; ms <= 20000; ms += 250 {
		pt := statusPoint{At: at(ms), State: "valid"}
		switch {
		case ms < 250:
			pt.State, pt.Requests = "refreshing", req(0, 0)
		case ms < 4000:
			pt.ExpiresIn, pt.Requests = 5-float64(ms-250)/1000, req(1, 0) // first token
		case ms < 8000:
			pt.ExpiresIn, pt.Requests = 5-float64(ms-4000)/1000, req(2, 0)
		case ms < 11000:
			pt.ExpiresIn, pt.Requests = 5-float64(ms-8000)/1000, req(3, 0)
		case ms < 13000: // the outage: one failure while the token lasts
			pt.State, pt.ExpiresIn, pt.Requests = "degraded", 5-float64(ms-8000)/1000, req(3, 1)
		case ms < 15000: // a second failure once it expired
			pt.State, pt.Requests = "unavailable", req(3, 2)
		default:
			pt.ExpiresIn, pt.Requests = 5-float64(ms-15000)/1000, req(4, 2)
		}
		tl.Points = append(tl.Points, pt)
	}
	tl.LoadFrom, tl.LoadTo = at(250), at(10000)
	tl.OutageFrom, tl.OutageTo = at(10500), at(14500)
	b.econ = &economyResult{Rate: 200, Dur: 10 * time.Second, Lifetime: 5 * time.Second, Timeline: tl}
	return b, tl
}

func TestTimelineEvents(t *testing.T) {
	_, tl := syntheticBench()
	evs := tl.events()
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s@%s ok=%v", e.Key, e.At, e.OK))
	}
	want := []string{
		"password/ok@250ms ok=true", "password/ok@4s ok=true", "password/ok@8s ok=true",
		"refresh_token/transient@11s ok=false", "refresh_token/transient@13s ok=false", "password/ok@15s ok=true",
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
}

// TestPlots renders every plot from synthetic data and checks each SVG is
// well-formed, names its series and axes, and that the timeline marks
// every token request.
func TestPlots(t *testing.T) {
	b, _ := syntheticBench()
	dir := t.TempDir()
	files, err := b.writePlots(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"throughput.svg": {"requests per second", "A: groupid_auth", "B: static header_up", "C: direct (no proxy)", "one round", "Throughput, median of rounds (wrk -t2 -c64, 5 rounds)"},
		"latency.svg":    {"latency (ms)", "p50", "p90", "p99", "A: groupid_auth", "B: static header_up", "C: direct (no proxy)"},
		"token-timeline.svg": {"served token&#39;s time left (s)", "seconds since Caddy started", "token request: ok (4)",
			"token request: failed (2)", "token endpoint down", "valid", "degraded", "unavailable", "refreshing"},
	}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %d plots", files, len(want))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		svg := string(data)
		wellFormed(t, f.Name, svg)
		for _, s := range want[f.Name] {
			if !strings.Contains(svg, ">"+s+"<") {
				t.Errorf("%s: no text %q", f.Name, s)
			}
		}
	}
	// Each token request is one glyph in its outcome's colour, plus one
	// in the legend.
	data, _ := os.ReadFile(filepath.Join(dir, "token-timeline.svg"))
	svg := string(data)
	if n := strings.Count(svg, "fill:"+svgColor(okColor)); n != 4+1 {
		t.Errorf("ok token requests: %d glyphs in %s, want 4 and the legend's", n, svgColor(okColor))
	}
	// A cross is two strokes.
	if n := strings.Count(svg, "stroke:"+svgColor(failColor)); n != 2*(2+1) {
		t.Errorf("failed token requests: %d strokes in %s, want 2 crosses and the legend's", n, svgColor(failColor))
	}
}

func wellFormed(t *testing.T, name, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", name, root)
	}
}

// svgColor is a colour as vgsvg writes it.
func svgColor(c color.RGBA) string { return fmt.Sprintf("#%02X%02X%02X", c.R, c.G, c.B) }
