package groupidauth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// This file holds the credential's extra form fields (form_params) and
// the default token lifetime: their placeholders, validation, Caddyfile
// syntax and what they give the token client.

// Bounds of form_params.
const (
	maxFormParams         = 32
	maxFormParamNameLen   = 128
	maxFormParamValueLen  = 4096
	minDefaultLifetime    = 5 * time.Second
	defaultLifetimeBounds = "from 5s to 24h"
)

// formParamNames are the names of the credential's form params, sorted, so
// that errors and the grant do not depend on map order.
func (c *Credential) formParamNames() []string {
	return slices.Sorted(maps.Keys(c.FormParams))
}

// expandFormParams replaces the placeholders in the form params' values.
// Errors name the param and the placeholder, never the value.
func (c *Credential) expandFormParams() error {
	repl := caddy.NewReplacer()
	for _, name := range c.formParamNames() {
		v, err := repl.ReplaceOrErr(c.FormParams[name], true, true)
		if err != nil {
			return fmt.Errorf("form_params %q: %w", name, err)
		}
		c.FormParams[name] = v
	}
	return nil
}

// validateFormParams checks the expanded form params: a name that the
// grant sends itself (see tokencache.GrantFormFields, compared ignoring
// case as GroupID does) fails, naming it; names are visible ASCII, values
// not empty. Never repeats a value.
func (c *Credential) validateFormParams() error {
	if len(c.FormParams) > maxFormParams {
		return fmt.Errorf("form_params: at most %d", maxFormParams)
	}
	for _, name := range c.formParamNames() {
		switch {
		case tokencache.IsGrantFormField(name):
			return fmt.Errorf("form_params %q: %s is sent by the grant itself and cannot be set or overridden", name, strings.ToLower(name))
		case name == "" || len(name) > maxFormParamNameLen || !tokencache.VisibleASCII(name):
			return fmt.Errorf("form_params %q: a name must be 1 to %d visible ASCII characters", name, maxFormParamNameLen)
		case c.FormParams[name] == "":
			return fmt.Errorf("form_params %q: empty value", name)
		case len(c.FormParams[name]) > maxFormParamValueLen:
			return fmt.Errorf("form_params %q: value longer than %d bytes", name, maxFormParamValueLen)
		}
	}
	return nil
}

// grantFormParams are the form params for the grant, in name order.
func (c *Credential) grantFormParams() []tokencache.FormParam {
	var out []tokencache.FormParam
	for _, name := range c.formParamNames() {
		out = append(out, tokencache.FormParam{Name: name, Value: c.FormParams[name]})
	}
	return out
}

// validateDefaultLifetime checks default_token_lifetime.
func (c *Credential) validateDefaultLifetime() error {
	d := time.Duration(c.DefaultTokenLifetime)
	if d != 0 && (d < minDefaultLifetime || d > tokencache.MaxTokenLifetime) {
		return errors.New("default_token_lifetime: must be " + defaultLifetimeBounds)
	}
	return nil
}

// defaultLifetime is default_token_lifetime, or its default.
func (c *Credential) defaultLifetime() time.Duration {
	if c.DefaultTokenLifetime == 0 {
		return tokencache.DefaultTokenLifetime
	}
	return time.Duration(c.DefaultTokenLifetime)
}

// repeatable reports whether a credential subdirective may be given more
// than once in one block (form_param, once per name).
func repeatable(subdirective string) bool { return subdirective == "form_param" }

// unmarshalFormParam parses `form_param <name> <value>`.
func (c *Credential) unmarshalFormParam(d *caddyfile.Dispenser, where string) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.ArgErr()
	}
	if _, dup := c.FormParams[args[0]]; dup {
		return d.Errf("%s: form_param %s given more than once", where, args[0])
	}
	if c.FormParams == nil {
		c.FormParams = map[string]string{}
	}
	c.FormParams[args[0]] = args[1]
	return nil
}
