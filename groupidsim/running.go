package groupidsim

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Running is a simulator serving on a real socket.
type Running struct {
	// URL is the site base, such as https://127.0.0.1:4443 (no trailing slash).
	URL string
	// CA signed the server certificate; nil for plain HTTP.
	CA *CA
	// Sim is the simulator being served.
	Sim *Server

	srv       *http.Server
	ln        net.Listener
	done      chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr (such as "127.0.0.1:0") and serves sim. With useTLS
// the site uses a fresh CA and a certificate for 127.0.0.1, ::1, localhost
// and the host in addr.
func Start(addr string, sim *Server, useTLS bool) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Running{
		Sim:  sim,
		ln:   ln,
		done: make(chan error, 1),
		srv: &http.Server{
			Handler:           sim.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
		if r.CA, err = GenerateCA(); err != nil {
			ln.Close()
			return nil, err
		}
		hosts := []string{"127.0.0.1", "::1", "localhost"}
		if h, _, err := net.SplitHostPort(addr); err == nil && h != "" && !contains(hosts, h) {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				hosts = append(hosts, h)
			}
		}
		cert, err := r.CA.Issue(hosts...)
		if err != nil {
			ln.Close()
			return nil, err
		}
		r.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	r.URL = scheme + "://" + net.JoinHostPort(host, port)
	go func() {
		var err error
		if useTLS {
			err = r.srv.ServeTLS(ln, "", "")
		} else {
			err = r.srv.Serve(ln)
		}
		r.done <- err
	}()
	return r, nil
}

// Addr returns the listening address as host:port.
func (r *Running) Addr() string { return r.ln.Addr().String() }

// TokenURL returns the token endpoint address of this site.
func (r *Running) TokenURL() string { return r.Sim.TokenURL(r.URL) }

// Client returns an HTTP client that trusts this site's CA (if any) and
// ignores proxy settings from the environment.
func (r *Running) Client() *http.Client {
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: false}
	if r.CA != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.CA.Pool(), MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Close stops the server at once, closing open connections. Later calls
// return the first call's result.
func (r *Running) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.srv.Close()
		if err := <-r.done; err != nil && !errors.Is(err, http.ErrServerClosed) && r.closeErr == nil {
			r.closeErr = err
		}
	})
	return r.closeErr
}
