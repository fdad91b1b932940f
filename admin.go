package groupidauth

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI adds two routes to Caddy's admin API:
//
//	GET  /groupid/status              every loaded credential as JSON
//	POST /groupid/refresh[?name=...]  force a token request now
//
// Neither ever shows a secret or a token.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.groupid_auth",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (a adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/groupid/status", Handler: caddy.AdminHandlerFunc(a.handleStatus)},
		{Pattern: "/groupid/refresh", Handler: caddy.AdminHandlerFunc(a.handleRefresh)},
	}
}

func (adminAPI) handleStatus(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	out := []sourceStatus{}
	for _, s := range lookupCredentials(r.URL.Query().Get("name")) {
		out = append(out, s.status())
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}

func (adminAPI) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	name := r.URL.Query().Get("name")
	srcs := lookupCredentials(name)
	if len(srcs) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no groupid_auth credential by that name")}
	}
	names := []string{}
	for _, s := range srcs {
		s.src.ForceRefresh()
		names = append(names, s.info.Name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	return json.NewEncoder(w).Encode(map[string][]string{"refreshing": names})
}

var _ caddy.AdminRouter = adminAPI{}
