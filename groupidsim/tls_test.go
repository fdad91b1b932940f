package groupidsim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func postToken(c *http.Client, tokenURL string, form url.Values) (*http.Response, error) {
	return c.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

func TestStartTLS(t *testing.T) {
	rs, err := Start("127.0.0.1:0", New(testCfg()), true)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if rs.CA == nil || !strings.HasPrefix(rs.URL, "https://127.0.0.1:") || !strings.HasSuffix(rs.URL, ":"+portOf(t, rs.Addr())) {
		t.Fatalf("URL = %s, Addr = %s", rs.URL, rs.Addr())
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rs.CA.CertPEM()) {
		t.Fatal("CertPEM does not parse")
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := postToken(trusting, rs.Sim.TokenURL(rs.URL), passwordForm())
	if err != nil {
		t.Fatalf("trusting client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d", resp.StatusCode)
	}
	// The certificate also covers the name localhost.
	c := rs.Client()
	port := portOf(t, rs.Addr())
	if resp, err = postToken(c, "https://localhost:"+port+tokenPath, passwordForm()); err != nil {
		t.Errorf("localhost: %v", err)
	} else {
		resp.Body.Close()
	}

	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	_, err = postToken(plain, rs.TokenURL(), passwordForm())
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("untrusting client: err = %v, want unknown authority", err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartPlain(t *testing.T) {
	rs, err := Start("127.0.0.1:0", New(testCfg()), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if rs.CA != nil || !strings.HasPrefix(rs.URL, "http://") {
		t.Fatalf("URL = %s", rs.URL)
	}
	resp, err := postToken(rs.Client(), rs.TokenURL(), passwordForm())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d", resp.StatusCode)
	}
}

func TestCAIssueAndWrite(t *testing.T) {
	ca, err := GenerateCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("gid.example.test", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "gid.example.test"}
	if _, err := cert.Leaf.Verify(opts); err != nil {
		t.Errorf("verify by name: %v", err)
	}
	if err := cert.Leaf.VerifyHostname("10.1.2.3"); err != nil {
		t.Errorf("verify IP: %v", err)
	}
	if cert.Leaf.VerifyHostname("other.test") == nil {
		t.Error("leaf valid for an unlisted host")
	}
	if _, err := ca.Issue(); err == nil {
		t.Error("Issue without hosts succeeded")
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCertFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != string(ca.CertPEM()) || !strings.HasPrefix(string(b), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("written PEM differs: %v", err)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestFaultDownOverHTTP2(t *testing.T) {
	sim := New(testCfg())
	rs, err := Start("127.0.0.1:0", sim, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rs.CA.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	resp, err := postToken(c, rs.TokenURL(), passwordForm())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	sim.SetFault(Fault{Kind: FaultDown})
	if resp, err = postToken(c, rs.TokenURL(), passwordForm()); err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a stream error", resp.StatusCode)
	}
	if n := sim.Counters().TokenRequests["password/fault"]; n != 1 {
		t.Errorf("fault count = %d", n)
	}
	reqs := sim.Requests()
	if got := reqs[len(reqs)-1]; got.Status != 0 {
		t.Errorf("status recorded %d", got.Status)
	}
}
