package shapes

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

// clientQuery is the query every scenario request carries.
const clientQuery = "via=shapes"

// forgedAuth is the client's own Authorization in shapes without
// basic_auth: GroupID must never see it.
const forgedAuth = "Bearer forged-by-the-legacy-app"

// scenario is one client call of the matrix.
type scenario struct {
	name   string
	method string
	path   string // the GroupID path; the shape's prefix goes before it
	body   []byte
	revoke bool // GroupID answers the held token with 401 once
}

// standardScenarios are the three calls every shape gets: a GET of the
// seed user, the same GET with one 401, and a user creation with one 401.
func standardScenarios() []scenario {
	return []scenario{
		{name: "get", method: http.MethodGet, path: usersPath + "/" + groupidsim.SeedUserID},
		{name: "get after 401", method: http.MethodGet, path: usersPath + "/" + groupidsim.SeedUserID, revoke: true},
		{name: "post after 401", method: http.MethodPost, path: usersPath,
			body: []byte(`{"samAccountName":"shape.user","displayName":"Shape User","department":"QA"}`), revoke: true},
	}
}

// sideCall is a request to a non-GroupID place of a shape (legacy app,
// file server, error route...). It must never reach GroupID.
type sideCall struct {
	site     string // var name of the port; default "Port"
	method   string
	path     string
	header   http.Header
	status   int
	contains string // in the answer's body
}

// runScenario sends sc through the shape at site and checks everything the matrix
// asserts about it. See the package comment.
func (r *rig) runScenario(t *testing.T, s *shape, sc scenario, site string) {
	before := len(r.sim.Requests())
	issuedBefore := len(r.sim.IssuedTokens())
	tokensBefore := r.sim.Counters().TokensTotal()
	if sc.revoke {
		r.sim.RevokeAllTokens()
	}
	header := http.Header{"X-Original-Url": {"/GroupIDDataService/api/Logs/Download"}}
	if s.basicAuth {
		header.Set("Authorization", "Basic "+basicCredentials())
	} else {
		header.Set("Authorization", forgedAuth)
	}
	if sc.body != nil {
		header.Set("Content-Type", "application/json")
	}
	for k, v := range s.clientHeader {
		header[k] = v
	}
	got := r.do(t, sc.method, site+s.prefix+sc.path+"?"+clientQuery, sc.body, header)
	api := r.apiRequestsSince(t, before)

	wantN := 1
	if sc.revoke {
		wantN = 2
	}
	if len(api) != wantN {
		t.Errorf("GroupID got %d API requests, want %d: %s", len(api), wantN, r.describe(api))
	}
	wantQuery := clientQuery
	if s.addQuery != "" {
		wantQuery += "&" + s.addQuery
	}
	issued := r.sim.IssuedTokens()
	for i, req := range api {
		what := fmt.Sprintf("attempt %d of %d", i+1, len(api))
		if req.Method != sc.method || req.Path != sc.path || req.RawQuery != wantQuery {
			t.Errorf("%s: GroupID got %s %s?%s, want %s %s?%s", what, req.Method, req.Path, r.redact(req.RawQuery), sc.method, sc.path, wantQuery)
		}
		if sha256.Sum256(req.Body) != sha256.Sum256(sc.body) {
			t.Errorf("%s: body SHA-256 differs from what the client sent (%d bytes, client sent %d)", what, len(req.Body), len(sc.body))
		}
		idx := r.tokenIndex(t, what, req, issued)
		last := i == len(api)-1
		switch {
		case sc.revoke && i == 0 && len(api) == 2:
			if idx >= issuedBefore || req.Status != http.StatusUnauthorized {
				t.Errorf("%s: want the revoked token (issued before the revocation) answered 401; got token #%d (%d issued before), status %d", what, idx, issuedBefore, req.Status)
			}
		case last:
			if req.Status != http.StatusOK {
				t.Errorf("%s: GroupID answered %d, want 200 with an accepted token", what, req.Status)
			}
			if sc.revoke && idx < issuedBefore {
				t.Errorf("%s: carried token #%d, issued before the revocation; want a fresh one", what, idx)
			}
		}
		for name, want := range s.added {
			if vs := req.Header.Values(name); len(vs) != 1 || vs[0] != want {
				t.Errorf("%s: header %s is %q, want exactly once %q", what, name, r.redact(strings.Join(vs, "|")), want)
			}
		}
		for _, h := range []string{"X-Original-Url", "X-Original-URL"} {
			if _, ok := req.Header[h]; ok {
				t.Errorf("%s: the client's %s reached GroupID", what, h)
			}
		}
	}
	if len(api) == 2 {
		a, b := api[0].Header.Clone(), api[1].Header.Clone()
		a.Del("Authorization")
		b.Del("Authorization")
		if diff := headerDiff(a, b); diff != "" {
			t.Errorf("the replay's headers differ from the first attempt's (Authorization aside): %s", r.redact(diff))
		}
	}
	r.checkAnswer(t, sc, got, api)
	wantTokens := 0
	if sc.revoke {
		wantTokens = 1 // one drop, one fresh token
	}
	if n := r.sim.Counters().TokensTotal() - tokensBefore; n != wantTokens {
		t.Errorf("token requests during the call: %d, want %d", n, wantTokens)
	}
	r.sideCalls(t, s)
	r.assertNoTokenAtBackends(t)
}

// tokenIndex checks that req carried exactly one Authorization, "Bearer "
// and a token the simulator issued, and returns that token's index.
func (r *rig) tokenIndex(t *testing.T, what string, req groupidsim.Request, issued []string) int {
	if len(req.Authorization) != 1 {
		t.Errorf("%s: GroupID got %d Authorization values, want exactly 1", what, len(req.Authorization))
		return -1
	}
	tok, ok := strings.CutPrefix(req.Authorization[0], "Bearer ")
	idx := slices.Index(issued, tok)
	if !ok || idx < 0 {
		t.Errorf("%s: Authorization is %q, not Bearer and a token the simulator issued", what, r.redact(req.Authorization[0]))
	}
	return idx
}

// checkAnswer checks that the client got GroupID's own answer: the status
// GroupID sent last and GroupID's JSON, never a token.
func (r *rig) checkAnswer(t *testing.T, sc scenario, got reply, api []groupidsim.Request) {
	wantStatus := http.StatusOK
	if len(api) > 0 && api[len(api)-1].Status != 0 {
		wantStatus = api[len(api)-1].Status
	}
	if got.status != wantStatus {
		t.Errorf("client got %d %q, want GroupID's %d", got.status, r.redact(string(got.body)), wantStatus)
	}
	if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("client got Content-Type %q, want GroupID's application/json", ct)
	}
	if got.header.Get("Www-Authenticate") != "" {
		t.Errorf("client got GroupID's 401 challenge (WWW-Authenticate)")
	}
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Errorf("client body is not GroupID's JSON (%d bytes): %q", len(got.body), r.redact(string(got.body)))
	}
	switch sc.method {
	case http.MethodGet:
		if body["objectIdFromIdentityStore"] != groupidsim.SeedUserID {
			t.Errorf("client body is not the seed user: %q", r.redact(string(got.body)))
		}
	case http.MethodPost:
		if id, _ := body["data"].(string); len(id) != 36 || body["message"] != "User created successfully." {
			t.Errorf("client body is not GroupID's user creation result: %q", r.redact(string(got.body)))
		}
	}
	r.assertNoTokenInReply(t, "the client", got)
}

func (r *rig) assertNoTokenInReply(t *testing.T, who string, got reply) {
	if r.leaked(string(got.body)) {
		t.Errorf("%s got a token (token) in the answer's body", who)
	}
	for k, vs := range got.header {
		for _, v := range vs {
			if r.leaked(v) {
				t.Errorf("%s got a token (token) in answer header %s", who, k)
			}
		}
	}
}

// apiRequestsSince waits until every request the simulator got since
// index before has been answered (or dropped), and returns the API
// requests among them (token requests left out).
func (r *rig) apiRequestsSince(t *testing.T, before int) []groupidsim.Request {
	t.Helper()
	var reqs []groupidsim.Request
	testenv.Eventually(t, 10*time.Second, func() bool {
		reqs = r.sim.Requests()[before:]
		for _, q := range reqs {
			if q.Status == 0 {
				return false
			}
		}
		return true
	}, "GroupID to finish its requests")
	var api []groupidsim.Request
	for _, q := range reqs {
		if !strings.EqualFold(q.Path, tokenPath) {
			api = append(api, q)
		}
	}
	return api
}

// describe lists requests for a failure message, without tokens.
func (r *rig) describe(reqs []groupidsim.Request) string {
	var parts []string
	for _, q := range reqs {
		parts = append(parts, fmt.Sprintf("%s %s -> %d", q.Method, r.redact(q.Path), q.Status))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// sideCalls makes the shape's requests to its non-GroupID places and
// checks their answers, that none reached GroupID and that none carries a
// token back.
func (r *rig) sideCalls(t *testing.T, s *shape) {
	mark := len(r.sim.Requests())
	for _, c := range s.side {
		site := c.site
		if site == "" {
			site = "Port"
		}
		method := c.method
		if method == "" {
			method = http.MethodGet
		}
		header := c.header
		if header == nil && s.basicAuth {
			header = http.Header{"Authorization": {"Basic " + basicCredentials()}}
		}
		got := r.do(t, method, r.site(site)+c.path, nil, header)
		if got.status != c.status || !strings.Contains(string(got.body), c.contains) {
			t.Errorf("side call %s %s: got %d %q, want %d containing %q", method, c.path, got.status, r.redact(string(got.body)), c.status, c.contains)
		}
		r.assertNoTokenInReply(t, "side call "+c.path, got)
	}
	if reqs := r.sim.Requests()[mark:]; len(reqs) != 0 {
		t.Errorf("side calls reached GroupID: %s", r.describe(reqs))
	}
}

// headerDiff describes how two headers differ; "" when equal.
func headerDiff(a, b http.Header) string {
	var out []string
	for k, va := range a {
		if vb := b[k]; !slices.Equal(va, vb) {
			out = append(out, fmt.Sprintf("%s: %q vs %q", k, va, vb))
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing vs %q", k, vb))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}
