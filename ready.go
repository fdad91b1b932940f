package groupidauth

import (
	"encoding/json"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Ready{})
	httpcaddyfile.RegisterHandlerDirective("groupid_ready", parseReady)
	httpcaddyfile.RegisterDirectiveOrder("groupid_ready", httpcaddyfile.Before, "respond")
}

// Ready answers a readiness probe: 200 while the named groupid_auth
// credential (or, with no name, every loaded one) holds a valid token, 503
// otherwise, each with a short JSON body. It is meant for a Kubernetes
// readinessProbe, so that traffic goes only to a pod that can serve it. It
// never contacts GroupID. Liveness must not use it: a GroupID outage is no
// reason to restart the sidecar.
type Ready struct {
	// Name of the credential to check (the `name` of a groupid_auth
	// handler in the same config). Default: all credentials.
	Name string `json:"name,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Ready) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groupid_ready",
		New: func() caddy.Module { return new(Ready) },
	}
}

type readiness struct {
	Ready       bool               `json:"ready"`
	Reason      string             `json:"reason,omitempty"`
	Credentials []credentialStatus `json:"credentials,omitempty"`
}

type credentialStatus struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	ExpiresIn float64 `json:"expires_in_seconds"`
	LastError string  `json:"last_error,omitempty"`
}

// ServeHTTP writes the readiness verdict; it does not call next.
func (rd Ready) ServeHTTP(w http.ResponseWriter, _ *http.Request, _ caddyhttp.Handler) error {
	out := readiness{Ready: true}
	srcs := lookupCredentials(rd.Name)
	if len(srcs) == 0 {
		out.Ready, out.Reason = false, "no groupid_auth credential is loaded"
		if rd.Name != "" {
			out.Reason = "no groupid_auth credential named " + rd.Name + " is loaded"
		}
	}
	for _, s := range srcs {
		st := s.status()
		cs := credentialStatus{Name: st.Name, State: st.State, ExpiresIn: st.ExpiresIn}
		if st.LastError != nil {
			cs.LastError = st.LastError.Class + " " + st.LastError.Code
		}
		if st.State != stateValid && st.State != stateDegraded {
			out.Ready = false
			out.Reason = "no valid token for " + st.Name + " (" + st.State + ")"
		}
		out.Credentials = append(out.Credentials, cs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if out.Ready {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return json.NewEncoder(w).Encode(out)
}

// parseReady: groupid_ready [<matcher>] [<name>]
func parseReady(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rd := new(Ready)
	err := rd.UnmarshalCaddyfile(h.Dispenser)
	return rd, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (rd *Ready) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		rd.Name = d.Val()
	}
	if d.NextArg() || d.NextBlock(0) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = Ready{}
	_ caddyfile.Unmarshaler       = (*Ready)(nil)
)
