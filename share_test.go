package groupidauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

var testShareKey = bytes.Repeat([]byte{7}, 32)

func TestDecodeShareKey(t *testing.T) {
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(testShareKey),
		base64.RawURLEncoding.EncodeToString(testShareKey),
		hex.EncodeToString(testShareKey),
		" " + base64.StdEncoding.EncodeToString(testShareKey) + "\n",
	} {
		if k, err := decodeShareKey(s); err != nil || !bytes.Equal(k, testShareKey) {
			t.Errorf("key form %d chars: %v", len(s), err)
		}
	}
	for _, s := range []string{"", "short", base64.StdEncoding.EncodeToString(testShareKey[:16]), hex.EncodeToString(testShareKey[:31])} {
		_, err := decodeShareKey(s)
		if err == nil || !strings.HasPrefix(err.Error(), "share.key: ") || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("bad key %q: %v", s, err)
		}
	}
}

func TestShareValidationNamesTheField(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(testShareKey)
	for _, c := range []struct {
		sc   ShareConfig
		want string
	}{
		{ShareConfig{}, "share.key: required"},
		{ShareConfig{Key: "not-a-key"}, "share.key: must be 32 bytes"},
		{ShareConfig{Key: key, LockTimeout: -1}, "share.lock_timeout: must not be negative"},
		{ShareConfig{Key: key, LockTimeout: caddy.Duration(6 * time.Minute)}, "share.lock_timeout: must be at most 5m"},
		{ShareConfig{Key: key, LockTimeout: caddy.Duration(5 * time.Second)}, "share.lock_timeout: must be at least 9s, so that a waiting replica can take over the lock of a replica that died holding it (its lease is stale after 6s, looked at every 1.5s)"},
		{ShareConfig{Key: key, CheckInterval: -1}, "share.check_interval: must not be negative"},
		{ShareConfig{Key: key, CheckInterval: caddy.Duration(500 * time.Millisecond)}, "share.check_interval: must be at least 1s"},
		{ShareConfig{Key: key, LockTimeout: caddy.Duration(9 * time.Second), CheckInterval: caddy.Duration(time.Second)}, ""},
	} {
		h := simHandler("https://gid.example/GroupIDSecurityService/connect/token")
		sc := c.sc
		h.Share = &sc
		err := h.Credential.validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.sc.LockTimeout, err, c.want)
		}
	}
}

func TestUnmarshalShareBlock(t *testing.T) {
	d := caddyfile.NewTestDispenser(`groupid_auth {
		token_url https://gid/t
		share {
			key {file./run/secrets/groupid/share.key}
			storage file_system /shared/caddy
			lock_timeout 12s
			check_interval 10s
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	sc := h.Share
	if sc == nil || sc.Key != "{file./run/secrets/groupid/share.key}" || time.Duration(sc.LockTimeout) != 12*time.Second || time.Duration(sc.CheckInterval) != 10*time.Second {
		t.Fatalf("share %+v", sc)
	}
	var st map[string]any
	if err := json.Unmarshal(sc.StorageRaw, &st); err != nil || st["module"] != "file_system" || st["root"] != "/shared/caddy" {
		t.Fatalf("storage %s: %v", sc.StorageRaw, err)
	}

	for _, c := range []struct{ src, want string }{
		{`groupid_auth { share extra { key k } }`, "wrong argument count"},
		{`groupid_auth { share { key k
		key k } }`, "share: subdirective key given more than once"},
		{`groupid_auth { share { colour red } }`, "share: unknown subdirective colour"},
		{`groupid_auth { share { key } }`, "wrong argument count"},
		{`groupid_auth { share { key a b } }`, "wrong argument count"},
		{`groupid_auth { share { lock_timeout soon } }`, "share.lock_timeout: invalid duration"},
		{"groupid_auth {\nshare {\ncheck_interval\n}\n}", "wrong argument count"},
		{"groupid_auth {\nshare {\nstorage\n}\n}", "wrong argument count"},
		{`groupid_auth { share { storage no_such_storage } }`, "getting module named 'caddy.storage.no_such_storage'"},
		{"groupid_auth {\nshare {\nkey k\n}\nshare {\nkey k\n}\n}", "subdirective share given more than once"},
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.src, err, c.want)
		}
	}
}

func TestShareNamesAndSealing(t *testing.T) {
	g := tokencache.Grant{TokenURL: "https://gid/t", Username: "svc", Password: "pw-1", ClientID: "c", ClientSecret: "s-1", IdentityStoreID: "2"}
	k1, l1 := shareNames(testShareKey, g)
	g2 := g
	g2.Password, g2.ClientSecret = "pw-2", "s-2"
	if k2, l2 := shareNames(testShareKey, g2); k2 != k1 || l2 != l1 {
		t.Error("the storage key depends on a secret: a rotated password would split the cluster")
	}
	other := bytes.Repeat([]byte{8}, 32)
	if k3, _ := shareNames(other, g); k3 == k1 {
		t.Error("the storage key does not depend on the share key")
	}
	g3 := g
	g3.IdentityStoreID = "3"
	if k4, _ := shareNames(testShareKey, g3); k4 == k1 {
		t.Error("two identity stores share a storage key")
	}
	if !strings.HasPrefix(k1, "groupid_auth/") || strings.Contains(k1, "svc") {
		t.Errorf("storage key %q", k1)
	}

	s, err := newStorageShare(testShareKey, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &tokencache.SharedEntry{Version: 3, AccessToken: "at-secret-xyz", RefreshToken: "rt-secret-xyz", TokenType: "Bearer",
		IssuedAt: time.Unix(100, 0).UTC(), Expiry: time.Unix(1300, 0).UTC()}
	b1, err := s.seal(e)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := s.seal(e)
	if bytes.Equal(b1, b2) {
		t.Error("two writes of one entry are identical: the nonce is not random")
	}
	if bytes.Contains(b1, []byte("secret-xyz")) {
		t.Error("sealed entry holds a token in clear")
	}
	got, err := s.open(b1)
	if err != nil || *got != *e {
		t.Fatalf("open: %+v, %v", got, err)
	}
	wrong, _ := newStorageShare(other, g, nil)
	wrong.key = s.key
	if _, err := wrong.open(b1); err != tokencache.ErrShareCorrupt {
		t.Errorf("open with another key: %v", err)
	}
	b1[len(b1)-1] ^= 1
	if _, err := s.open(b1); err != tokencache.ErrShareCorrupt {
		t.Errorf("open of a damaged entry: %v", err)
	}
	if _, err := s.open(nil); err != tokencache.ErrShareCorrupt {
		t.Errorf("open of nothing: %v", err)
	}
}

// A shared credential keeps its token encrypted in the storage folder, and
// says so on the admin status and the metrics.
func TestSharedCredentialStoresEncryptedAndReports(t *testing.T) {
	sim, tokenURL := simSite(t, groupidsim.Config{})
	dir := t.TempDir()
	h := simHandler(tokenURL)
	h.Name = "shared-unit"
	h.Share = &ShareConfig{
		Key:        hex.EncodeToString(testShareKey),
		StorageRaw: json.RawMessage(`{"module":"file_system","root":` + strconvQuote(dir) + `}`),
	}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	tok, err := h.cred().src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	testenv.Eventually(t, 5*time.Second, func() bool {
		files = nil
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && strings.Contains(p, "groupid_auth") && !strings.HasSuffix(p, ".lock") {
				files = append(files, p)
			}
			return nil
		})
		return len(files) > 0
	}, "the shared entry in storage")
	if len(files) != 1 {
		t.Fatalf("stored files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	for _, secret := range append(sim.IssuedTokens(), append(sim.IssuedRefreshTokens(), groupidsim.DefaultPassword, groupidsim.DefaultClientSecret)...) {
		if bytes.Contains(b, []byte(secret)) {
			t.Fatal("the storage folder holds a token or secret in clear (redacted)")
		}
	}
	snap := h.cred().snapshot()
	st := snap.status()
	if st.TokenSource != "own" || st.ShareLockWaits == nil || *st.ShareLockWaits != 1 || *st.ShareFallbacks != 0 || *st.ShareStorageErrors != 0 {
		t.Fatalf("status token_source=%q waits=%v", st.TokenSource, st.ShareLockWaits)
	}
	_ = tok
	reg := prometheus.NewRegistry()
	if err := reg.Register(appCollector{h.app}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" {
					name += "/" + l.GetValue()
				}
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"caddy_groupid_share_lock_waits_total": 1, "caddy_groupid_share_fallbacks_total": 0,
		"caddy_groupid_share_storage_errors_total": 0, "caddy_groupid_token_source/own": 1, "caddy_groupid_token_source/shared": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// newFileShare is a storageShare over a file_system storage in dir.
func newFileShare(t *testing.T, dir string) *storageShare {
	t.Helper()
	st := &certmagic.FileStorage{Path: dir}
	s, err := newStorageShare(testShareKey, tokencache.Grant{TokenURL: "https://gid/t", Username: "svc", IdentityStoreID: "2"},
		func() certmagic.Storage { return st })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A lock whose holder died is broken once its lease has not changed for
// leaseStale, even while CertMagic keeps the lock file itself fresh (here a
// lock taken with CertMagic directly, whose refresher goroutine runs on, as
// one left over from a released lock does).
func TestShareLockBreaksAStaleLease(t *testing.T) {
	t.Parallel()
	s := lockedByDeadHolder(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), leaseStale+3*lockTry)
	defer cancel()
	if err := s.Lock(ctx); err != nil {
		t.Fatalf("lock with a dead holder: %v", err)
	}
	took := time.Since(start)
	if err := s.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.lockBreaks.Load(); n != 1 || took < leaseStale {
		t.Fatalf("%d lock breaks after %s; want 1 after at least %s", n, took, leaseStale)
	}
}

// A live holder's lease changes every leaseBeat: a waiter times out and
// never breaks its lock.
func TestShareLockKeepsALiveHoldersLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	holder, waiter := newFileShare(t, dir), newFileShare(t, dir)
	if err := holder.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseStale+2*lockTry)
	defer cancel()
	if err := waiter.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter got %v, want a timeout", err)
	}
	if n := waiter.lockBreaks.Load(); n != 0 {
		t.Fatalf("a live holder's lock was broken %d times", n)
	}
	if err := holder.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := waiter.Lock(context.Background()); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	_ = waiter.Unlock(context.Background())
}

// TestShareStorageFollowsTheRunningConfig: a load that is provisioned but
// not running (or that failed) never has its storage used; the running
// config's is.
func TestShareStorageFollowsTheRunningConfig(t *testing.T) {
	c := new(credential) // its uses only: configs start and stop it
	s, err := newStorageShare(testShareKey, tokencache.Grant{TokenURL: "https://gid/t", Username: "svc", IdentityStoreID: "2"}, c.storage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.st(); err == nil {
		t.Fatal("a storage before any config runs (caddy validate: nothing of ours runs)")
	}
	a, b := &credUse{storage: &certmagic.FileStorage{Path: t.TempDir()}}, &credUse{storage: &certmagic.FileStorage{Path: t.TempDir()}}
	c.attach(a) // the running config
	// b's config is provisioned after it and never starts: not used.
	if st, err := s.st(); err != nil || st != a.storage {
		t.Fatal("a config that is not running supplied the storage")
	}
	// A load whose groupid app started, then failed (another app did not
	// start): Caddy stops the apps it started; a's storage again.
	c.attach(b)
	c.stop(b)
	if st, err := s.st(); err != nil || st != a.storage {
		t.Fatal("after a failed load, the failed config's storage is still used")
	}
	// A reload to another storage: once the new config runs, its storage
	// is used, not the first config's, also after the old one stops.
	reloaded := &credUse{storage: &certmagic.FileStorage{Path: t.TempDir()}}
	c.attach(reloaded)
	if st, err := s.st(); err != nil || st != reloaded.storage {
		t.Fatal("after a reload to another storage, the first config's storage is still used")
	}
	c.stop(a)
	if st, err := s.st(); err != nil || st != reloaded.storage {
		t.Fatal("the old config's stop changed the storage")
	}
}

// TestShareLeaseStaleOnlyWithinOneWait (issue 17, defect 4): what a waiter
// saw of the lease in an earlier wait does not count in the next one. A
// lock whose lease is not (yet) written, as just after a live holder took
// it, is not broken by a waiter whose earlier wait saw "no lease" long ago:
// it must see it unchanged for leaseStale in this wait.
func TestShareLeaseStaleOnlyWithinOneWait(t *testing.T) {
	t.Parallel()
	s := lockedByDeadHolder(t)
	// An earlier wait saw no lease, an hour ago.
	s.mu.Lock()
	s.seenLease, s.seenAt = "(none)", time.Now().Add(-time.Hour)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*lockTry+lockTry/2)
	defer cancel()
	if err := s.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter got %v, want a timeout", err)
	}
	if n := s.lockBreaks.Load(); n != 0 {
		t.Fatalf("the lock was broken %d times on an observation from an earlier wait", n)
	}
}

// lockedByDeadHolder returns a share whose storage lock is held without a
// lease, as by a replica that died (taken with CertMagic directly).
func lockedByDeadHolder(t *testing.T) *storageShare {
	t.Helper()
	dir := t.TempDir()
	s := newFileShare(t, dir)
	fs := &certmagic.FileStorage{Path: dir}
	if err := fs.Lock(context.Background(), s.lockName); err != nil {
		t.Fatal(err)
	}
	return s
}
