package shapes

import "net/http"

// routingShapes place groupid_auth and the proxy with handle, handle_path,
// route and rewrites around them.
var routingShapes = []*shape{
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
}
