package groupidauth

import (
	"fmt"
	"sort"
)

// appCredential is one credential of a config: the pooled credential (one
// pool use per config) and what this config gives it while it runs.
type appCredential struct {
	c     *credential
	use   *credUse
	trust tlsSettings
	named bool // defined in the app's credentials, usable by name
}

// register adds a prepared credential to the app, taking it from the pool.
// Handlers of one config that give the same settings under the same name
// share it; the same name with other settings, or other token endpoint
// TLS settings, fails the load.
func (a *App) register(p *prepared, named bool) (*credential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := p.spec.info.Name
	if ac, ok := a.creds[name]; ok {
		if ac.c.key != p.spec.key {
			return nil, fmt.Errorf("name: %q is already used by a credential with different settings in this config; give each credential its own name", name)
		}
		if field := ac.trust.differs(p.trust); field != "" {
			return nil, fmt.Errorf("%s: two groupid_auth handlers of credential %q in this config give the token endpoint different TLS settings; "+
				"give them the same settings, or different names (each name is a credential of its own)", field, name)
		}
		ac.named = ac.named || named
		return ac.c, nil
	}
	p.spec.clock, p.spec.jitter = a.clock, a.jitter
	c, err := acquireCredential(p.spec)
	if err != nil {
		return nil, err
	}
	p.use.events = a.queue
	a.creds[name] = &appCredential{c: c, use: p.use, trust: p.trust, named: named}
	return c, nil
}

// named returns the app's named credential name.
func (a *App) named(name string) (*credential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ac, ok := a.creds[name]; ok && ac.named {
		return ac.c, nil
	}
	var names []string
	for n, ac := range a.creds {
		if ac.named {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return nil, fmt.Errorf("credentials: no credential named %q is defined in the groupid app (Caddyfile: global option `groupid { credential %s { ... } }`; defined: %v)", name, name, names)
}

// list returns the app's credentials named name, or all of them (sorted by
// name) when name is empty: what the status faces show while the app runs.
func (a *App) list(name string) []*credential {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.running {
		return nil
	}
	var out []*credential
	for _, n := range a.namesLocked() {
		if name == "" || n == name {
			out = append(out, a.creds[n].c)
		}
	}
	return out
}

// namesLocked returns the credential names, sorted. Call with a.mu held.
func (a *App) namesLocked() []string {
	names := make([]string, 0, len(a.creds))
	for n := range a.creds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
