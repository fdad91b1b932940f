// Command groupid-sim serves the GroupID simulator on a real socket for
// demos and scripts.
//
//	groupid-sim -addr 127.0.0.1:4443 -ca-out /tmp/gid-ca.pem -ready-file /tmp/gid.url
//
// It prints the site, token and Data API addresses, writes the CA
// certificate and the site URL where asked, and stops on SIGINT or SIGTERM.
// Control endpoints under /_sim/ set faults, revoke tokens and read counters.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "groupid-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg       groupidsim.Config
		addr      = flag.String("addr", "127.0.0.1:4443", "listen address (host:port; port 0 picks a free one)")
		useTLS    = flag.Bool("tls", true, "serve HTTPS with a fresh throwaway CA")
		caOut     = flag.String("ca-out", "", "write the CA certificate (PEM) to this file")
		readyFile = flag.String("ready-file", "", "write the site URL to this file once listening")
	)
	flag.StringVar(&cfg.Username, "username", groupidsim.DefaultUsername, "service account user name")
	flag.StringVar(&cfg.Password, "password", groupidsim.DefaultPassword, "service account password")
	flag.StringVar(&cfg.ClientID, "client-id", groupidsim.DefaultClientID, "OAuth client ID")
	flag.StringVar(&cfg.ClientSecret, "client-secret", groupidsim.DefaultClientSecret, "OAuth client secret")
	flag.StringVar(&cfg.IdentityStoreID, "identity-store", groupidsim.DefaultIdentityStoreID, "identity store ID")
	flag.DurationVar(&cfg.TokenLifetime, "token-lifetime", groupidsim.DefaultTokenLifetime, "access token lifetime")
	flag.DurationVar(&cfg.RefreshTokenLifetime, "refresh-lifetime", groupidsim.DefaultRefreshTokenLifetime, "absolute refresh token lifetime")
	flag.StringVar(&cfg.SecurityPrefix, "security-prefix", groupidsim.DefaultSecurityPrefix, "Security Service path prefix")
	flag.StringVar(&cfg.DataPrefix, "data-prefix", groupidsim.DefaultDataPrefix, "Data Service path prefix")
	flag.IntVar(&cfg.ExpiresInSkew, "expires-in-skew", 0, "seconds subtracted from expires_in")
	flag.IntVar(&cfg.WrongPasswordStatus, "wrong-password-status", 400, "HTTP status for a bad password")
	flag.StringVar(&cfg.RefreshErrorCode, "refresh-error", groupidsim.DefaultRefreshErrorCode, "OAuth error for a bad refresh token")
	flag.BoolVar(&cfg.JWTAccessTokens, "jwt-access-tokens", false, "issue access tokens as JWTs with an exp claim")
	flag.BoolVar(&cfg.OmitExpiresIn, "omit-expires-in", false, "leave expires_in out of token responses")
	flag.BoolVar(&cfg.ReuseRevokesFamily, "reuse-revokes-family", false, "revoke a token family when a used refresh token is replayed")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}

	sim := groupidsim.New(cfg)
	rs, err := groupidsim.Start(*addr, sim, *useTLS)
	if err != nil {
		return err
	}
	defer rs.Close()

	if *caOut != "" {
		if rs.CA == nil {
			return fmt.Errorf("-ca-out needs -tls")
		}
		if err := rs.CA.WriteCertFile(*caOut); err != nil {
			return err
		}
	}
	fmt.Printf("groupid-sim listening on %s\n", rs.URL)
	fmt.Printf("  token endpoint: %s\n", rs.TokenURL())
	eff := sim.Config()
	fmt.Printf("  data API:       %s%s/api/IdentityStores/%s\n", rs.URL, eff.DataPrefix, eff.IdentityStoreID)
	fmt.Printf("  control:        %s/_sim/counters\n", rs.URL)
	if *caOut != "" {
		fmt.Printf("  CA certificate: %s\n", *caOut)
	}
	if *readyFile != "" {
		if err := writeAtomic(*readyFile, rs.URL+"\n"); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Println("groupid-sim: shutting down")
	done := make(chan error, 1)
	go func() { done <- rs.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("shutdown timed out")
	}
}

// writeAtomic writes data to path through a temporary file and a rename, so
// a script polling for path never sees it half written.
func writeAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".groupid-sim-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
