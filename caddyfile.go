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

// parseCaddyfile sets up the handler from Caddyfile tokens. Syntax, with
// the credential inline:
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
//	    form_param        <name> <value>   (repeatable, one per name)
//	    refresh_before    <duration>
//	    default_token_lifetime <duration>
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
//
// or with named credentials of the groupid global option (several: one
// per identity store), and the handler's own settings only:
//
//	groupid_auth [<matcher>] <credential>... {
//	    credentials       <credential>...   (instead of the arguments)
//	    replay_on_401     on|off
//	    max_replay_body   <size>
//	    api_base          <path>
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
	h.Credentials = d.RemainingArgs()
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if name == "credential" {
			name = "credentials" // the same subdirective, singular for one
		}
		if (seen[name] && !repeatable(name)) || (name == "credentials" && len(h.Credentials) > 0) {
			return d.Errf("groupid_auth: subdirective %s given more than once", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "credentials":
			if h.Credentials = d.RemainingArgs(); len(h.Credentials) == 0 {
				return d.ArgErr()
			}
		case "name", "api_base":
			err = oneArg(d, h.stringField(name))
		case "replay_on_401":
			err = h.unmarshalReplay(d)
		case "max_replay_body":
			err = h.unmarshalMaxBody(d)
		default:
			err = h.Credential.unmarshalSetting(d, "groupid_auth", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) unmarshalReplay(d *caddyfile.Dispenser) error {
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
	return nil
}

func (h *Handler) unmarshalMaxBody(d *caddyfile.Dispenser) error {
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
	return nil
}

// oneArg sets *ptr to the subdirective's one argument.
func oneArg(d *caddyfile.Dispenser, ptr *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*ptr = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// unmarshalSetting parses one credential subdirective, in a groupid_auth
// block or a named credential of the groupid global option (where says
// which, for errors).
func (c *Credential) unmarshalSetting(d *caddyfile.Dispenser, where, name string) error {
	switch name {
	case "scope":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		c.Scope = joinSpace(args)
	case "tls_insecure_skip_verify", "allow_http", "revoke_on_stop":
		if d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "allow_http":
			c.AllowHTTP = true
		case "revoke_on_stop":
			c.RevokeOnStop = true
		default:
			c.TLSInsecureSkipVerify = true
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
			return d.Errf("%s: tls_trust_pool: module %s is not a CA pool source", where, modID)
		}
		c.TrustPoolRaw = caddyconfig.JSONModuleObject(unm, "provider", modStem, nil)
	case "share":
		return c.unmarshalShare(d, where)
	case "form_param":
		return c.unmarshalFormParam(d, where)
	case "refresh_before", "timeout", "dial_timeout", "default_token_lifetime":
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := caddy.ParseDuration(d.Val())
		if err != nil {
			return d.Errf("%s: %s: invalid duration", where, name)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "timeout":
			c.Timeout = caddy.Duration(dur)
		case "dial_timeout":
			c.DialTimeout = caddy.Duration(dur)
		case "default_token_lifetime":
			c.DefaultTokenLifetime = caddy.Duration(dur)
		default:
			c.RefreshBefore = caddy.Duration(dur)
		}
	default:
		ptr := c.stringField(name)
		if ptr == nil {
			return d.Errf("%s: unknown subdirective %s", where, name)
		}
		return oneArg(d, ptr)
	}
	return nil
}

// unmarshalShare parses the share block.
func (c *Credential) unmarshalShare(d *caddyfile.Dispenser, where string) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	sc := new(ShareConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return d.Errf("%s: share: subdirective %s given more than once", where, name)
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
				return d.Errf("%s: share.storage: module %s is not a storage", where, modStem)
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
				return d.Errf("%s: share.%s: invalid duration", where, name)
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
			return d.Errf("%s: share: unknown subdirective %s", where, name)
		}
	}
	c.Share = sc
	return nil
}

// stringField returns the handler's single-value string field for a
// subdirective.
func (h *Handler) stringField(name string) *string {
	return findField(h.stringFields(), name)
}

// stringField returns the credential's single-value string field for a
// subdirective.
func (c *Credential) stringField(name string) *string {
	return findField(c.stringFields(), name)
}

func findField(fields []stringField, name string) *string {
	for _, f := range fields {
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
