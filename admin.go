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
//	GET  /groupid/status[?name=...]   the running config's credentials as JSON
//	POST /groupid/refresh[?name=...]  force a token request now
//
// Neither ever shows a secret or a token.
type adminAPI struct {
	app *App // tests: the app to show; nil: the running config's
}

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

func (api adminAPI) handleStatus(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	out := []credentialStatus{}
	for _, c := range api.running().list(r.URL.Query().Get("name")) {
		out = append(out, c.snapshot().status())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

func (api adminAPI) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: errors.New("method not allowed")}
	}
	creds := api.running().list(r.URL.Query().Get("name"))
	if len(creds) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("no groupid_auth credential by that name")}
	}
	names := []string{}
	for _, c := range creds {
		c.src.ForceRefresh()
		names = append(names, c.info.Name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	return json.NewEncoder(w).Encode(map[string][]string{"refreshing": names})
}

var _ caddy.AdminRouter = adminAPI{}

func (api adminAPI) running() *App {
	if api.app != nil {
		return api.app
	}
	return runningApp()
}

// runningApp is the groupid app of the running config, or nil.
func runningApp() *App {
	ctx := caddy.ActiveContext()
	if ctx.Context == nil {
		return nil
	}
	v, err := ctx.AppIfConfigured("groupid")
	if err != nil {
		return nil
	}
	app, _ := v.(*App)
	return app
}
