package shapes

import (
	"encoding/base64"
	"net/http"
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
	// after, if set, runs after the scenarios.
	after func(t *testing.T, r *rig)
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
		})
	}
	if s.after != nil {
		s.after(t, r)
	}
}

var (
	refused    = sideCall{path: "/other", status: http.StatusForbidden, contains: "refused"}
	legacyPage = sideCall{path: "/app/page", status: http.StatusOK, contains: "legacy app page"}
)

// TestShapes runs the standard scenarios (a GET of the seed user; the same
// GET with GroupID answering 401 once; a user creation with one 401)
// through each shape below and asserts, for each: GroupID got one API
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

var shapes = []*shape{
	{
		name: "02 groupid_auth inside handle @api, respond 403 fallback",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused, {path: apiBase + "/Other", status: http.StatusForbidden, contains: "refused"}},
	},
	{
		name: "03a site level, proxy in handle @api, legacy fallback without transport",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	{{template "api"}}
	handle @api {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		reverse_proxy {{.Legacy}}
	}
}`,
		side: []sideCall{legacyPage},
	},
	{
		name: "03b site level, proxy in handle @api, legacy fallback with transport http",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	{{template "api"}}
	handle @api {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		reverse_proxy {{.Legacy}} {
			transport http {
				read_timeout 10s
			}
		}
	}
}`,
		side: []sideCall{legacyPage},
	},
	{
		name:   "04 site level, handle_path /groupid/*",
		prefix: "/groupid",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	handle_path /groupid/* {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		reverse_proxy {{.Legacy}}
	}
}`,
		// Not a User or Group path once stripped: the transport refuses it.
		side: []sideCall{legacyPage, {path: "/groupid/GroupIDDataService/api/Logs/Download", status: http.StatusForbidden}},
	},
	{
		name: "05 site level, file_server sibling",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	{{template "api"}}
	handle /static/* {
		root * {{.Static}}
		file_server
	}
	handle @api {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{{path: "/static/hello.txt", status: http.StatusOK, contains: "hello from file_server"}, refused},
	},
	{
		name: "06 nested handle blocks",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	handle /GroupIDDataService/* {
		handle ` + apiBase + `/* {
			{{template "auth" .}}
			reverse_proxy {{.Origin}} {
				{{template "transport" .}}
			}
		}
		handle {
			respond "not here" 404
		}
	}
	handle {
		reverse_proxy {{.Legacy}}
	}
}`,
		side: []sideCall{{path: "/GroupIDDataService/other", status: http.StatusNotFound, contains: "not here"}, legacyPage},
	},
	{
		name:   "07 route with groupid_auth, uri strip_prefix, reverse_proxy",
		prefix: "/groupid",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	route /groupid/* {
		{{template "auth" .}}
		uri strip_prefix /groupid
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	@other not path /groupid/*
	reverse_proxy @other {{.Legacy}}
}`,
		side: []sideCall{legacyPage},
	},
	{
		name:     "08 uri query, request_header and header_up after groupid_auth",
		addQuery: "x=1",
		added:    map[string]string{"X-Extra": "one", "X-Up": "two"},
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	route @api {
		{{template "auth" .}}
		uri query +x 1
		request_header +X-Extra one
		reverse_proxy {{.Origin}} {
			header_up +X-Up two
			{{template "transport" .}}
		}
	}
	respond "refused" 403
}`,
		side: []sideCall{refused},
	},
	{
		name: "10a intercept of 401 beside groupid_auth",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		intercept {
			@u status 401
			handle_response @u {
				respond "intercepted" 502
			}
		}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused},
	},
	{
		name: "10b reverse_proxy handle_response for 401",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
			@u status 401
			handle_response @u {
				respond "intercepted" 502
			}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused},
	},
	{
		name:         "11 encode gzip zstd",
		clientHeader: http.Header{"Accept-Encoding": {"gzip"}},
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	encode gzip zstd
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused},
	},
	{
		name: "12 request_body max_size",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	request_body {
		max_size 1MB
	}
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused},
	},
	{
		// fail_duration makes the dead upstream unavailable after its dial
		// error, so lb_retries reaches GroupID (without passive health
		// checks, lb_policy first picks the dead upstream on every retry).
		// Each scenario reloads with a new dead port, so each one goes
		// dead upstream -> GroupID (401) -> replay.
		name: "13 dead upstream first, lb_retries 2",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Dead}} {{.Origin}} {
			lb_policy first
			lb_retries 2
			fail_duration 30s
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused},
		beforeScenario: func(t *testing.T, r *rig, s *shape) {
			r.vars["Dead"] = r.deadUpstream()
			load(t, r.render(t, s.caddyfile))
		},
	},
	{
		name:  "14a forward_auth before site-level groupid_auth",
		added: map[string]string{"X-Auth-User": "alice"},
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	forward_auth {{.AuthService}} {
		uri /auth
		copy_headers X-Auth-User
	}
	{{template "auth" .}}
	{{template "api"}}
	handle @api {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		reverse_proxy {{.Legacy}}
	}
}`,
		side: []sideCall{legacyPage},
		after: func(t *testing.T, r *rig) {
			if n := len(r.authService.requests()); n < 4 {
				t.Errorf("the forward_auth service saw %d requests, want one per call (at least 4)", n)
			}
		},
	},
	{
		name:      "14b basic_auth before site-level groupid_auth",
		basicAuth: true,
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	basic_auth {
		` + basicUser + ` {{.BasicHash}}
	}
	{{template "auth" .}}
	{{template "api"}}
	handle @api {
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{refused, {path: usersPath + "/x", header: http.Header{}, status: http.StatusUnauthorized}},
	},
	{
		name: "16 groupid_auth twice (site level and in handle)",
		caddyfile: `{{template "global" .}}
http://:{{.Port}} {
	bind 127.0.0.1
	{{template "auth" .}}
	{{template "api"}}
	handle @api {
		{{template "auth" .}}
		reverse_proxy {{.Origin}} {
			{{template "transport" .}}
		}
	}
	handle /second/* {
		reverse_proxy {{.Second}}
	}
	handle {
		respond "refused" 403
	}
}`,
		side: []sideCall{{path: "/second/page", status: http.StatusOK, contains: "second upstream page"}, refused},
	},
}
