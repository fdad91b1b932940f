// Package monitoring builds the Grafana dashboard of deploy/monitoring
// (groupid-dashboard.json) with typed structs, so that every panel, query
// and variable is checked by the compiler and by this package's tests: the
// committed JSON equals what Dashboard builds (go test -update rewrites
// it), every metric it and the alert rules name is one the collector
// exports, and every query returns data from a real Prometheus scraping a
// real Caddy.
package monitoring

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DashboardFile is the file, in this folder, that holds Dashboard's JSON.
const DashboardFile = "groupid-dashboard.json"

// Model is a Grafana dashboard (the subset of the JSON model used here).
type Model struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Tags          []string   `json:"tags"`
	Editable      bool       `json:"editable"`
	Refresh       string     `json:"refresh"`
	SchemaVersion int        `json:"schemaVersion"`
	Time          TimeRange  `json:"time"`
	Templating    Templating `json:"templating"`
	Panels        []Panel    `json:"panels"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable: the data source (Type "datasource")
// or a label's values (Type "query").
type Variable struct {
	Name       string         `json:"name"`
	Label      string         `json:"label"`
	Type       string         `json:"type"`
	Query      string         `json:"query"`
	Definition string         `json:"definition,omitempty"`
	Datasource *DatasourceRef `json:"datasource,omitempty"`
	Refresh    int            `json:"refresh"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue,omitempty"`
	Sort       int            `json:"sort"`
}

// DatasourceRef names a data source; here always the datasource variable.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a row (Type "row") or a visualization.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     GridPos        `json:"gridPos"`
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Targets     []Target       `json:"targets,omitempty"`
	FieldConfig *FieldConfig   `json:"fieldConfig,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	Collapsed   *bool          `json:"collapsed,omitempty"`
	Panels      []Panel        `json:"panels,omitempty"`
}

// GridPos places a panel on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Datasource   *DatasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
}

// FieldConfig sets a panel's unit, bounds and value mappings.
type FieldConfig struct {
	Defaults FieldDefaults `json:"defaults"`
}

// FieldDefaults are the field settings of every series of a panel.
type FieldDefaults struct {
	Unit     string    `json:"unit,omitempty"`
	Min      *float64  `json:"min,omitempty"`
	Mappings []Mapping `json:"mappings,omitempty"`
}

// Mapping maps values to display text and color.
type Mapping struct {
	Type    string                  `json:"type"`
	Options map[string]MappingValue `json:"options"`
}

// MappingValue is what a mapped value shows.
type MappingValue struct {
	Text  string `json:"text"`
	Color string `json:"color"`
	Index int    `json:"index"`
}

// datasource is the reference every panel and query uses: the dashboard's
// datasource variable, so the dashboard imports into any Grafana.
var datasource = &DatasourceRef{Type: "prometheus", UID: "${datasource}"}

// sel is the label selector of every query: the instance and credential
// name variables.
const sel = `{instance=~"$instance", name=~"$name"}`

// JSON returns the dashboard as the committed file holds it.
func (m Model) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Visualizations returns every panel that is not a row.
func (m Model) Visualizations() []Panel {
	var out []Panel
	for _, p := range m.Panels {
		if p.Type != "row" {
			out = append(out, p)
		}
	}
	return out
}

// Sketch draws the dashboard's layout as text, 3 characters per grid
// column, a row's title on its top border (the README shows it).
func (m Model) Sketch() string {
	var b strings.Builder
	line := ""
	flush := func() {
		if line != "" {
			b.WriteString(line + "|\n")
			line = ""
		}
	}
	for _, p := range m.Panels {
		if p.Type == "row" {
			flush()
			head := "+-- " + p.Title + " "
			b.WriteString(head + strings.Repeat("-", 24*3-len(head)) + "+\n")
			continue
		}
		cell := "|" + p.Title
		if w := p.GridPos.W*3 - len(cell); w > 0 {
			cell += strings.Repeat(" ", w)
		}
		line += cell[:p.GridPos.W*3]
	}
	flush()
	b.WriteString("+" + strings.Repeat("-", 24*3-1) + "+\n")
	return b.String()
}

// layout places rows and panels: each row starts a new line of the grid,
// panels follow left to right, and IDs count up.
type layout struct {
	m    *Model
	x, y int
	rowH int
}

func (l *layout) row(title string) {
	if l.x > 0 {
		l.y += l.rowH
	}
	collapsed := false
	l.m.Panels = append(l.m.Panels, Panel{ID: len(l.m.Panels) + 1, Type: "row", Title: title,
		GridPos: GridPos{H: 1, W: 24, X: 0, Y: l.y}, Collapsed: &collapsed})
	l.x, l.y, l.rowH = 0, l.y+1, 0
}

func (l *layout) add(w, h int, p Panel) {
	if l.x+w > 24 {
		panic(fmt.Sprintf("panel %q does not fit its row", p.Title))
	}
	p.ID, p.GridPos, p.Datasource = len(l.m.Panels)+1, GridPos{H: h, W: w, X: l.x, Y: l.y}, datasource
	for i := range p.Targets {
		p.Targets[i].RefID = string(rune('A' + i))
		p.Targets[i].Datasource = datasource
	}
	l.m.Panels = append(l.m.Panels, p)
	l.x += w
	l.rowH = max(l.rowH, h)
}
