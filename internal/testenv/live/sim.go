package live

import "github.com/caddy-groupid/caddy-groupid/groupidsim"

// Sim is a GroupID simulator serving HTTPS on a free loopback port, its
// CA certificate written to CAFile (for ca_cert_file and tls_trust_pool).
// The embedded Running gives URL, CA, Sim, TokenURL, Client and Close.
type Sim struct {
	*groupidsim.Running
	CAFile string
}

// StartSim starts a simulator with cfg and writes its CA to caFile.
func StartSim(cfg groupidsim.Config, caFile string) (*Sim, error) {
	run, err := groupidsim.Start("127.0.0.1:0", groupidsim.New(cfg), true)
	if err != nil {
		return nil, err
	}
	if err := run.CA.WriteCertFile(caFile); err != nil {
		_ = run.Close()
		return nil, err
	}
	return &Sim{Running: run, CAFile: caFile}, nil
}
