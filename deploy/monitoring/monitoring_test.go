package monitoring

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	groupidauth "github.com/caddy-groupid/caddy-groupid"
)

var update = flag.Bool("update", false, "rewrite "+DashboardFile+" from Dashboard()")

const (
	rulesFile     = "groupid-alerts.yml"
	rulesTestFile = "groupid-alerts.test.yml"
	readmeFile    = "../../README.md"
	// skipEnv set to 1 skips the tests that need Debian's prometheus
	// package; without it they fail when promtool or prometheus is missing.
	skipEnv = "GROUPID_SKIP_PROMETHEUS"
)

// tool returns the path of promtool or prometheus. It fails the test if
// the binary is missing, unless skipEnv says to skip.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("%s not installed and %s=1", name, skipEnv)
	}
	t.Fatalf("%s not found: install Debian's prometheus package (apt-get install prometheus; .ci/run does), "+
		"or set %s=1 to skip the tests of deploy/monitoring that need it", name, skipEnv)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	if out := run(t, "promtool", "check", "rules", rulesFile); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	if out := run(t, "promtool", "test", "rules", rulesTestFile); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

// rule is an alerting rule of rulesFile.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	return rules
}

func readYAML(t *testing.T, file string, out any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestEveryAlertIsDocumentedAndTested: each alert has a severity, a
// summary, a description and a runbook link to its README entry, and a
// promtool test that sees it fire and one that sees it not fire.
func TestEveryAlertIsDocumentedAndTested(t *testing.T) {
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, rulesTestFile, &tests)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs a severity label and summary and description annotations", r.Alert)
		}
		anchor := strings.ToLower(r.Alert)
		if !strings.HasSuffix(r.Annotations["runbook_url"], "README.md#"+anchor) {
			t.Errorf("%s: runbook_url %q, want one ending in README.md#%s", r.Alert, r.Annotations["runbook_url"], anchor)
		}
		if !bytes.Contains(readme, []byte("\n#### "+r.Alert+"\n")) {
			t.Errorf("%s: no runbook entry (#### %s) in the README", r.Alert, r.Alert)
		}
		if !firing[r.Alert] || !quiet[r.Alert] {
			t.Errorf("%s: %s needs a test where it fires (%v) and one where it does not (%v)", r.Alert, rulesTestFile, firing[r.Alert], quiet[r.Alert])
		}
	}
}

// TestDashboardFileIsBuilt: the committed dashboard is what Dashboard()
// builds (go test ./deploy/monitoring -run TestDashboardFileIsBuilt -update
// rewrites it).
func TestDashboardFileIsBuilt(t *testing.T) {
	want, err := Dashboard().JSON()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(DashboardFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from Dashboard(); run go test ./deploy/monitoring -run TestDashboardFileIsBuilt -update", DashboardFile)
	}
}

// TestDashboardShape: a datasource variable used by every panel and query,
// panels inside the 24-column grid without overlap, and the README showing
// the layout.
func TestDashboardShape(t *testing.T) {
	d := Dashboard()
	if v := d.Templating.List[0]; v.Name != "datasource" || v.Type != "datasource" || v.Query != "prometheus" {
		t.Fatalf("first variable %+v, want the prometheus datasource variable", v)
	}
	taken := map[[2]int]string{}
	for _, p := range d.Panels {
		g := p.GridPos
		if g.X < 0 || g.W < 1 || g.X+g.W > 24 || g.H < 1 {
			t.Errorf("panel %q: gridPos %+v outside the grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if *p.Datasource != *datasource || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if *tg.Datasource != *datasource || !strings.Contains(tg.Expr, sel) {
				t.Errorf("panel %q: query %q must use the datasource variable and the selector %s", p.Title, tg.Expr, sel)
			}
		}
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, []byte(d.Sketch())) {
		t.Errorf("the README does not show the dashboard's layout; it should contain:\n%s", d.Sketch())
	}
}

// TestMetricNamesAreTheCollectors: every caddy_groupid_ name in the rules,
// their tests and the dashboard is one the collector exports, and the
// dashboard shows every series.
func TestMetricNamesAreTheCollectors(t *testing.T) {
	names := groupidauth.MetricNames()
	known := func(n string) bool {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && slices.Contains(names, base) {
				return true
			}
		}
		return false
	}
	re := regexp.MustCompile(`caddy_groupid_[a-z_]+`)
	dash, err := Dashboard().JSON()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, f := range []string{rulesFile, rulesTestFile, DashboardFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if f == DashboardFile {
			b = dash
		}
		for _, n := range re.FindAllString(string(b), -1) {
			if !known(n) {
				t.Errorf("%s names %s, which the collector does not export (metrics.go)", f, n)
			}
			if f == DashboardFile {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for _, n := range names {
		if !used[n] {
			t.Errorf("the dashboard shows no %s", n)
		}
	}
}
