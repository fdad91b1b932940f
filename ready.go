package groupidauth

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Ready{})
}

// Ready answers a readiness probe: 200 while the named groupid_auth
// credential (or, with no name, every credential of the running config)
// serves a token to requests, 503 otherwise, each with a short JSON body.
// It reads the same state the request path reads: "ready" means a request
// would be forwarded with a token now. It is meant for a Kubernetes
// readinessProbe, so that traffic goes only to a pod that can serve it. It
// never contacts GroupID. Liveness must not use it: a GroupID outage is no
// reason to restart the sidecar.
type Ready struct {
	app *App
	// Name of the credential to check: the `name` of a groupid_auth handler
	// in the same config (placeholders such as {env.X} are expanded as in
	// that name; a config in which no groupid_auth handler has this name
	// does not start). Default: empty, meaning every credential.
	Name string `json:"name,omitempty"`
}

// Provision expands placeholders in Name and has the config's groupid app
// check, when the config starts, that a credential of that name exists.
// The handler reads the credentials of its own config's app.
func (rd *Ready) Provision(ctx caddy.Context) error {
	name, err := caddy.NewReplacer().ReplaceOrErr(rd.Name, true, true)
	if err != nil {
		return fmt.Errorf("name: %w", err)
	}
	rd.Name = name
	if rd.app == nil {
		if rd.app, err = appOf(ctx); err != nil {
			return err
		}
	}
	if rd.Name != "" {
		rd.app.addReadyName(rd.Name)
	}
	return nil
}

// CaddyModule returns the Caddy module information.
func (Ready) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groupid_ready",
		New: func() caddy.Module { return new(Ready) },
	}
}

// readiness is the JSON body of a readiness answer.
type readiness struct {
	Ready       bool             `json:"ready"`
	Reason      string           `json:"reason,omitempty"`
	Credentials []readinessEntry `json:"credentials,omitempty"`
}

// readinessEntry is one credential in a readiness answer.
type readinessEntry struct {
	Name      string               `json:"name"`
	State     tokencache.Condition `json:"state"`
	ExpiresIn float64              `json:"expires_in_seconds"`
	LastError string               `json:"last_error,omitempty"`
}

// verdict is the readiness of the running config's credentials.
func (rd Ready) verdict() readiness {
	out := readiness{Ready: true}
	creds := rd.app.list(rd.Name)
	if len(creds) == 0 {
		out.Ready, out.Reason = false, "no groupid_auth credential is loaded"
		if rd.Name != "" {
			out.Reason = "no groupid_auth credential named " + rd.Name + " is loaded"
		}
	}
	for _, c := range creds {
		s := c.snapshot()
		e := readinessEntry{Name: s.info.Name, State: s.state, ExpiresIn: s.expiresIn().Seconds()}
		if s.lastErr != nil {
			e.LastError = s.lastErr.Class.String() + " " + s.lastErr.Code
		}
		if !s.state.Serving() {
			out.Ready = false
			out.Reason = "no valid token for " + s.info.Name + " (" + string(s.state) + ")"
		}
		out.Credentials = append(out.Credentials, e)
	}
	return out
}

// ServeHTTP writes the readiness verdict; it does not call next.
func (rd Ready) ServeHTTP(w http.ResponseWriter, _ *http.Request, _ caddyhttp.Handler) error {
	out := rd.verdict()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if out.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return json.NewEncoder(w).Encode(out)
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = Ready{}
	_ caddy.Provisioner           = (*Ready)(nil)
)
