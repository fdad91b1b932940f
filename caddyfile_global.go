package groupidauth

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("groupid", parseGlobal)
}

// parseGlobal sets up the groupid app from the global option block.
// Syntax (each credential block takes the credential subdirectives of
// groupid_auth, from token_url to share):
//
//	{
//	    groupid {
//	        credential <name> {
//	            token_url         <url>
//	            username          <name>
//	            password          <secret>
//	            ...
//	        }
//	        tracing
//	    }
//	}
//
// The block may be given more than once; the credentials add up.
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, err
		}
	}
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "groupid", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler for the global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if d.Val() == "tracing" {
			if err := a.unmarshalTracing(d); err != nil {
				return err
			}
			continue
		}
		if d.Val() != "credential" {
			return d.Errf("groupid: unknown subdirective %s (want credential <name> { ... } or tracing)", d.Val())
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		name := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		if _, dup := a.Credentials[name]; dup {
			return d.Errf("groupid: credential %s defined more than once", name)
		}
		where := "groupid: credential " + name
		cr := new(Credential)
		seen := map[string]bool{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			sub := d.Val()
			if seen[sub] && !repeatable(sub) {
				return d.Errf("%s: subdirective %s given more than once", where, sub)
			}
			seen[sub] = true
			if err := cr.unmarshalSetting(d, where, sub); err != nil {
				return err
			}
		}
		if a.Credentials == nil {
			a.Credentials = map[string]*Credential{}
		}
		a.Credentials[name] = cr
	}
	return nil
}

// unmarshalTracing parses `tracing` (no arguments): spans for token
// requests, exported per the OTEL_* environment.
func (a *App) unmarshalTracing(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if a.Tracing {
		return d.Err("groupid: tracing given more than once")
	}
	a.Tracing = true
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*App)(nil)
