package groupidauth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// tlsSim runs the simulator over HTTPS with a private CA; mutate adjusts the
// server's TLS config (e.g. to require client certificates).
func tlsSim(t *testing.T, mutate func(*tls.Config, *groupidsim.CA)) (*groupidsim.Server, *groupidsim.CA, string) {
	t.Helper()
	ca, err := groupidsim.GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	sim := groupidsim.New(groupidsim.Config{})
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	if mutate != nil {
		mutate(srv.TLS, ca)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return sim, ca, sim.TokenURL(srv.URL)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// firstToken provisions h and waits for its first token request to end.
func firstToken(t *testing.T, h *Handler) (*tokencache.Token, error) {
	t.Helper()
	if err := provision(t, h); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return h.cred().src.Token(context.Background())
}

func TestPrivateCATrustedByFileOrPoolAndRefusedWithout(t *testing.T) {
	_, ca, tokenURL := tlsSim(t, nil)
	caFile := writeFile(t, "ca.pem", ca.CertPEM())

	withFile := simHandler(tokenURL)
	withFile.AllowHTTP = false
	withFile.CACertFile = caFile
	if _, err := firstToken(t, withFile); err != nil {
		t.Fatalf("ca_cert_file: %v", err)
	}

	withPool := simHandler(tokenURL)
	withPool.AllowHTTP = false
	withPool.Name = "pool"
	withPool.TrustPoolRaw = filePool(caFile)
	if _, err := firstToken(t, withPool); err != nil {
		t.Fatalf("tls_trust_pool: %v", err)
	}

	// A fresh site: the token store would otherwise hand over the token
	// that the handlers above obtained for the same credential.
	_, _, otherURL := tlsSim(t, nil)
	without := simHandler(otherURL)
	without.AllowHTTP = false
	_, err := firstToken(t, without)
	var nt *tokencache.NoTokenError
	if !errors.As(err, &nt) || !strings.Contains(err.Error(), "TLS certificate not trusted") {
		t.Fatalf("without the CA: %v", err)
	}
}

func TestServerNameOverride(t *testing.T) {
	_, ca, tokenURL := tlsSim(t, nil)
	caFile := writeFile(t, "ca.pem", ca.CertPEM())
	good := simHandler(tokenURL)
	good.CACertFile, good.TLSServerName, good.AllowHTTP = caFile, "localhost", false
	if _, err := firstToken(t, good); err != nil {
		t.Fatalf("tls_server_name localhost: %v", err)
	}
	_, ca2, otherURL := tlsSim(t, nil)
	bad := simHandler(otherURL)
	bad.CACertFile, bad.TLSServerName, bad.AllowHTTP = writeFile(t, "ca2.pem", ca2.CertPEM()), "elsewhere.example", false
	if _, err := firstToken(t, bad); err == nil {
		t.Fatal("a certificate for the wrong name was accepted")
	}
}

func TestMutualTLSClientCertificate(t *testing.T) {
	// The server trusts client certificates issued by its own CA.
	sim, ca, tokenURL := tlsSim(t, func(c *tls.Config, ca *groupidsim.CA) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = ca.Pool()
	})
	caFile := writeFile(t, "ca.pem", ca.CertPEM())
	certPEM, keyPEM, err := ca.IssuePEM("caddy-groupid-sidecar")
	if err != nil {
		t.Fatal(err)
	}
	without := simHandler(tokenURL)
	without.CACertFile, without.AllowHTTP, without.Name = caFile, false, "no-cert"
	if _, err := firstToken(t, without); err == nil {
		t.Fatal("token obtained without a client certificate")
	}
	with := simHandler(tokenURL)
	with.CACertFile, with.AllowHTTP = caFile, false
	with.TLSClientCert = writeFile(t, "client.pem", certPEM)
	with.TLSClientKey = writeFile(t, "client.key", keyPEM)
	if _, err := firstToken(t, with); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if n := sim.Counters().Tokens("password"); n != 1 {
		t.Fatalf("password grants reaching the server: %d, want 1", n)
	}
}

func TestHTTPTokenURLRefusedUnlessAllowed(t *testing.T) {
	_, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	h.AllowHTTP = false
	err := provision(t, h)
	if err == nil || !strings.Contains(err.Error(), "token_url: http:// would send the password in clear text") {
		t.Fatalf("got %v", err)
	}
}

func TestBasicClientAuthentication(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	h := simHandler(tokenURL)
	h.ClientAuth = "basic"
	if _, err := firstToken(t, h); err != nil {
		t.Fatal(err)
	}
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/connect/token") {
			if strings.Contains(string(r.Body), "client_secret") || len(r.Authorization) != 1 || !strings.HasPrefix(r.Authorization[0], "Basic ") {
				t.Fatal("client credentials were not sent with HTTP Basic only")
			}
		}
	}
}

// TestOneCredentialOneTrustPerConfig (issue 17, defect 2): two handlers of
// one config with the same credential settings but different token
// endpoint TLS settings would share one transport, whichever came first;
// the second fails the load naming the field. The same settings (the same
// CA file) share the credential as before.
func TestOneCredentialOneTrustPerConfig(t *testing.T) {
	_, ca, tokenURL := tlsSim(t, nil)
	goodCA := writeFile(t, "ca.pem", ca.CertPEM())
	other, err := groupidsim.GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	otherCA := writeFile(t, "other.pem", other.CertPEM())
	provisionIn, cfg := oneConfig(t, func() *Handler {
		h := simHandler(tokenURL)
		h.AllowHTTP, h.CACertFile = false, goodCA
		return h
	})
	first, err := provisionIn(func(*Handler) {})
	if err != nil {
		t.Fatal(err)
	}
	if same, err := provisionIn(func(*Handler) {}); err != nil || same.cred() != first.cred() {
		t.Fatalf("same TLS settings: %v", err)
	}
	for field, mod := range map[string]func(*Handler){
		"ca_cert_file":             func(h *Handler) { h.CACertFile = otherCA },
		"tls_server_name":          func(h *Handler) { h.TLSServerName = "localhost" },
		"tls_insecure_skip_verify": func(h *Handler) { h.TLSInsecureSkipVerify = true },
	} {
		if _, err := provisionIn(mod); err == nil || !strings.HasPrefix(err.Error(), field+": two groupid_auth handlers") {
			t.Errorf("different %s: %v", field, err)
		}
	}
	// tls_trust_pool, whose raw JSON Caddy clears once it loads the module.
	pool := func(file string) func(*Handler) {
		return func(h *Handler) {
			h.Name, h.CACertFile = "pool", ""
			h.TrustPoolRaw = filePool(file)
		}
	}
	if _, err := provisionIn(pool(goodCA)); err != nil {
		t.Fatal(err)
	}
	if _, err := provisionIn(pool(otherCA)); err == nil || !strings.HasPrefix(err.Error(), "tls_trust_pool: two groupid_auth handlers") {
		t.Errorf("different tls_trust_pool: %v", err)
	}
	cfg.start() // the config loaded with the handlers that did not fail
	if _, err := first.cred().src.Token(context.Background()); err != nil {
		t.Fatalf("the first handler's trust was replaced: %v", err)
	}
}

// filePool is the raw JSON of a tls_trust_pool of one PEM file (the path
// JSON-quoted: a Windows path has backslashes).
func filePool(file string) json.RawMessage {
	q, _ := json.Marshal(file)
	return json.RawMessage(`{"provider":"file","pem_files":[` + string(q) + `]}`)
}
