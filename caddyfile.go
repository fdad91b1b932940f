package groupidauth

import (
	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("groupid_auth", parseCaddyfile)
	// After request_header puts groupid_auth after forward_auth and
	// basic_auth and before handle, route and reverse_proxy, so a
	// site-level groupid_auth also covers a reverse_proxy nested in
	// handle. The token itself is added later, by the groupid transport
	// of that reverse_proxy.
	httpcaddyfile.RegisterDirectiveOrder("groupid_auth", httpcaddyfile.After, "request_header")

	httpcaddyfile.RegisterHandlerDirective("groupid_ready", parseReady)
	httpcaddyfile.RegisterDirectiveOrder("groupid_ready", httpcaddyfile.Before, "respond")
}

// parseCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	groupid_auth [<matcher>] {
//	    name              <label>
//	    token_url         <url>
//	    username          <name>
//	    password          <secret>
//	    client_id         <id>
//	    client_secret     <secret>
//	    identity_store_id <id>
//	    scope             <scope...>
//	    refresh_before    <duration>
//	    timeout           <duration>
//	    dial_timeout      <duration>
//	    ca_cert_file      <path>
//	    tls_trust_pool    <module> [...]
//	    tls_client_cert   <path>
//	    tls_client_key    <path>
//	    tls_server_name   <name>
//	    tls_insecure_skip_verify
//	    allow_http
//	    client_auth       form|basic
//	    replay_on_401     on|off
//	    max_replay_body   <size>
//	    api_base          <path>
//	    share {
//	        key            <32 bytes, base64 or hex>
//	        storage        <module> [...]
//	        lock_timeout   <duration>
//	        check_interval <duration>
//	    }
//	}
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler. Defaults are left to
// Provision so that JSON and Caddyfile configs behave the same.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("groupid_auth: subdirective %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "scope":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Scope = joinSpace(args)
		case "replay_on_401":
			if !d.NextArg() {
				return d.ArgErr()
			}
			var on bool
			switch d.Val() {
			case "on", "true":
				on = true
			case "off", "false":
			default:
				return d.Errf("groupid_auth: replay_on_401: want on or off")
			}
			h.ReplayOn401 = &on
			if d.NextArg() {
				return d.ArgErr()
			}
		case "max_replay_body":
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := humanize.ParseBytes(d.Val())
			if err != nil {
				return d.Errf("groupid_auth: max_replay_body: invalid size")
			}
			if size > MaxReplayBodyLimit {
				return d.Errf("groupid_auth: max_replay_body: must be at most 16MiB")
			}
			h.MaxReplayBody = new(int64(size))
			if d.NextArg() {
				return d.ArgErr()
			}
		case "tls_insecure_skip_verify", "allow_http":
			if d.NextArg() {
				return d.ArgErr()
			}
			if name == "allow_http" {
				h.AllowHTTP = true
			} else {
				h.TLSInsecureSkipVerify = true
			}
		case "tls_trust_pool":
			if !d.NextArg() {
				return d.ArgErr()
			}
			modStem := d.Val()
			modID := "tls.ca_pool.source." + modStem
			unm, err := caddyfile.UnmarshalModule(d, modID)
			if err != nil {
				return err
			}
			if _, ok := unm.(caddytls.CA); !ok {
				return d.Errf("groupid_auth: tls_trust_pool: module %s is not a CA pool source", modID)
			}
			h.TrustPoolRaw = caddyconfig.JSONModuleObject(unm, "provider", modStem, nil)
		case "share":
			if err := h.unmarshalShare(d); err != nil {
				return err
			}
		case "refresh_before", "timeout", "dial_timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("groupid_auth: %s: invalid duration", name)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			switch name {
			case "timeout":
				h.Timeout = caddy.Duration(dur)
			case "dial_timeout":
				h.DialTimeout = caddy.Duration(dur)
			default:
				h.RefreshBefore = caddy.Duration(dur)
			}
		default:
			ptr := h.stringField(name)
			if ptr == nil {
				return d.Errf("groupid_auth: unknown subdirective %s", name)
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			*ptr = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		}
	}
	return nil
}

// unmarshalShare parses the share block.
func (h *Handler) unmarshalShare(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	sc := new(ShareConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("groupid_auth: share: subdirective %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "storage":
			if !d.NextArg() {
				return d.ArgErr()
			}
			modStem := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "caddy.storage."+modStem)
			if err != nil {
				return err
			}
			if _, ok := unm.(caddy.StorageConverter); !ok {
				return d.Errf("groupid_auth: share.storage: module %s is not a storage", modStem)
			}
			sc.StorageRaw = caddyconfig.JSONModuleObject(unm, "module", modStem, nil)
		case "key":
			if !d.NextArg() {
				return d.ArgErr()
			}
			sc.Key = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "lock_timeout", "check_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("groupid_auth: share.%s: invalid duration", name)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if name == "lock_timeout" {
				sc.LockTimeout = caddy.Duration(dur)
			} else {
				sc.CheckInterval = caddy.Duration(dur)
			}
		default:
			return d.Errf("groupid_auth: share: unknown subdirective %s", name)
		}
	}
	h.Share = sc
	return nil
}

// stringField returns the single-value string field for a subdirective.
func (h *Handler) stringField(name string) *string {
	for _, f := range h.stringFields() {
		if f.name == name && name != "scope" {
			return f.ptr
		}
	}
	return nil
}

func joinSpace(args []string) string {
	s := args[0]
	for _, a := range args[1:] {
		s += " " + a
	}
	return s
}

// parseReady sets up the readiness handler. Syntax:
//
//	groupid_ready [<matcher>] [<name>]
func parseReady(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	rd := new(Ready)
	err := rd.UnmarshalCaddyfile(h.Dispenser)
	return rd, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (rd *Ready) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
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
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Ready)(nil)
)
