package groupidauth

// perConfig holds one value per config load that uses a credential (its
// token endpoint transport, its share storage) and picks the one of the
// running config, so that a reload's settings take effect once it runs and
// a load that failed, or only was validated, is never used. Before any
// config of the credential runs, the newest load's value is used. Every
// method must be called with loaded's mutex held.
type perConfig[T comparable] struct {
	byConfig map[configID]T
	newest   configID // the load that set a value last
}

// set records v for cfg, unless cfg has one already (a second handler of
// the same config).
func (p *perConfig[T]) set(cfg configID, v T) {
	if p.byConfig == nil {
		p.byConfig = map[configID]T{}
	}
	if _, ok := p.byConfig[cfg]; !ok {
		p.byConfig[cfg] = v
	}
	p.newest = cfg
}

// drop forgets cfg's value and returns it.
func (p *perConfig[T]) drop(cfg configID) T {
	v := p.byConfig[cfg]
	delete(p.byConfig, cfg)
	if p.newest == cfg {
		p.newest = nil
		for other := range p.byConfig {
			p.newest = other
			break
		}
	}
	return v
}

// pick returns the value of active (the running config, from
// activeConfig, read before taking loaded's mutex), else the newest load's;
// the zero value when no load holds one.
func (p *perConfig[T]) pick(active configID) T {
	if v, ok := p.byConfig[active]; ok {
		return v
	}
	return p.byConfig[p.newest]
}
