package shapes

import (
	"net/http"
	"strings"
	"testing"
)

// middlewareShapes put other middleware and load balancing around
// groupid_auth and the proxy.
var middlewareShapes = []*shape{
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
			r.vars["Dead"] = deadUpstream(t)
			load(t, r.render(t, s.caddyfile))
		},
		// The dead upstream was tried (and failed) before GroupID.
		afterScenario: func(t *testing.T, r *rig) {
			dead := strings.TrimPrefix(r.vars["Dead"], "https://")
			if n := r.upstreamFails(t, dead); n < 1 {
				t.Errorf("the dead upstream has %d failures; lb_policy first should have tried it first", n)
			}
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
