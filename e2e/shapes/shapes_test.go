package shapes

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// shape is one Caddyfile of the matrix, a text/template over rig.vars
// and the snippets "global", "auth" (groupid_auth with the rig's
// credential), "transport" (transport groupid trusting the simulator's
// CA) and "api" (the @api matcher of the User and Group paths).
type shape struct {
	name      string
	caddyfile string
	// prefix goes before the GroupID path in the client's URL.
	prefix string
	// addQuery is what the shape adds to the query GroupID gets.
	addQuery string
	// added are the headers the shape adds; each must reach GroupID
	// exactly once with this value, on the replay too.
	added map[string]string
	// clientHeader is added to every scenario request.
	clientHeader http.Header
	// basicAuth: the client sends basic_auth credentials instead of a
	// forged bearer token.
	basicAuth bool
	side      []sideCall
	// beforeScenario, if set, runs before each scenario.
	beforeScenario func(t *testing.T, r *rig, s *shape)
	// afterScenario, if set, runs after each scenario.
	afterScenario func(t *testing.T, r *rig)
	// after, if set, runs after the scenarios.
	after func(t *testing.T, r *rig)
}

// shapeNamed returns the shape of the matrix whose name starts with prefix.
func shapeNamed(t *testing.T, prefix string) *shape {
	for _, s := range shapes {
		if strings.HasPrefix(s.name, prefix) {
			return s
		}
	}
	t.Fatalf("no shape %q", prefix)
	return nil
}

func basicCredentials() string {
	return base64.StdEncoding.EncodeToString([]byte(basicUser + ":" + basicPass))
}

// runShape loads s in front of a fresh simulator and runs the standard
// scenarios through it (see rig.runScenario for what each asserts).
func runShape(t *testing.T, s *shape) {
	t.Helper()
	r := newRig(t)
	load(t, r.render(t, s.caddyfile))
	r.waitForToken()
	r.runAll(t, s, "Port")
}

// runAll runs the standard scenarios through the shape's listener on the
// port held by var site, then s.after.
func (r *rig) runAll(t *testing.T, s *shape, site string) {
	t.Helper()
	for _, sc := range standardScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			if s.beforeScenario != nil {
				s.beforeScenario(t, r, s)
			}
			r.runScenario(t, s, sc, r.site(site))
			if s.afterScenario != nil {
				s.afterScenario(t, r)
			}
		})
	}
	if s.after != nil {
		s.after(t, r)
	}
}

// shapes is the matrix TestShapes runs.
var shapes = append(append([]*shape(nil), routingShapes...), middlewareShapes...)

var (
	refused    = sideCall{path: "/other", status: http.StatusForbidden, contains: "refused"}
	legacyPage = sideCall{path: "/app/page", status: http.StatusOK, contains: "legacy app page"}
)

// TestShapes runs the standard scenarios (a GET of the seed user; the same
// GET with GroupID answering 401 once; a user creation with one 401)
// through each shape of routingShapes and middlewareShapes and asserts,
// for each: GroupID got one API
// request, or exactly two around the 401 (the revoked token answered 401,
// then a fresh token answered 200), with the method, path (after the
// shape's rewrites), query and body SHA-256 the client sent, one
// Authorization that is "Bearer <issued token>", every header the shape
// adds exactly once, and the same headers on the replay; the client got
// GroupID's status and JSON; one token request per 401 and none
// otherwise; the shape's side calls answered as configured without
// reaching GroupID; and no recording backend ever received a token.
func TestShapes(t *testing.T) {
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) { runShape(t, s) })
	}
}

// upstreamFails returns the failure count Caddy holds for the upstream
// dialled at addr (admin API /reverse_proxy/upstreams).
func (r *rig) upstreamFails(t *testing.T, addr string) int {
	got := r.do(t, http.MethodGet, fmt.Sprintf("http://localhost:%d/reverse_proxy/upstreams", adminPort), nil, nil)
	var ups []struct {
		Address string `json:"address"`
		Fails   int    `json:"fails"`
	}
	if err := json.Unmarshal(got.body, &ups); err != nil {
		t.Fatalf("upstreams: %d %q: %v", got.status, r.redact(string(got.body)), err)
	}
	for _, u := range ups {
		if u.Address == addr {
			return u.Fails
		}
	}
	return 0
}
