package groupidauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// ShareConfig shares one credential's token between the replicas of a
// cluster through Caddy storage (module namespace caddy.storage), so that
// N replicas make the token requests of one. Off unless set.
type ShareConfig struct {
	// StorageRaw is the storage that the replicas share, for example
	// {"module": "file_system", "root": "/shared/caddy"} on a volume every
	// replica mounts, or a Redis, Consul or S3 storage module built in with
	// xcaddy. Default: Caddy's configured storage (the top-level "storage",
	// file_system under the data directory unless set).
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=caddy.storage inline_key=module"`

	// Key is the operator's 32-byte key, base64 or hex encoded, that
	// encrypts and authenticates the stored entry (AES-256-GCM) and names
	// it. Every replica needs the same key. Required. It is a secret: give
	// it as a placeholder such as {file./run/secrets/groupid/share.key}.
	// Make one with: head -c 32 /dev/urandom | base64
	Key string `json:"key,omitempty"`

	// LockTimeout bounds the wait for the storage lock before a refresh,
	// and each storage call. When the lock cannot be had in time, or
	// storage fails, the replica makes its own token request. Default: 5s.
	LockTimeout caddy.Duration `json:"lock_timeout,omitempty"`

	// CheckInterval is how often storage is read for a token that another
	// replica obtained. At least 1s. Default: a tenth of the token's
	// lifetime, at most 30s (2 minutes of GroupID's 20 minute tokens is
	// 120 s, so 30 s).
	CheckInterval caddy.Duration `json:"check_interval,omitempty"`
}

// shareKeyLen is the length of the decoded share key.
const shareKeyLen = 32

// decodeShareKey accepts 32 bytes in base64 (standard or URL, padded or
// not) or hex. Errors never repeat the value.
func decodeShareKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("share.key: required")
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == shareKeyLen {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == shareKeyLen {
			return b, nil
		}
	}
	return nil, errors.New("share.key: must be 32 bytes, base64 or hex encoded (head -c 32 /dev/urandom | base64)")
}

// validate checks the share block (after placeholders are expanded).
// Errors name the field and never repeat the key.
func (sc *ShareConfig) validate() error {
	if _, err := decodeShareKey(sc.Key); err != nil {
		return err
	}
	switch {
	case sc.LockTimeout < 0:
		return errors.New("share.lock_timeout: must not be negative")
	case time.Duration(sc.LockTimeout) > 5*time.Minute:
		return errors.New("share.lock_timeout: must be at most 5m")
	case sc.CheckInterval < 0:
		return errors.New("share.check_interval: must not be negative")
	case sc.CheckInterval > 0 && time.Duration(sc.CheckInterval) < tokencache.MinShareCheckInterval:
		return errors.New("share.check_interval: must be at least 1s")
	}
	return nil
}

// shareNames derives the storage key and lock name of a grant: an
// HMAC-SHA256 under the share key over the grant's non-secret identity, so
// every replica with the same key and settings finds the same entry, and
// the name reveals nothing without the key. Never from a secret, and not
// from tokencache.Grant.Key, which is salted per process.
func shareNames(key []byte, g tokencache.Grant) (storageKey, lockName string) {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	for _, f := range []string{"groupid_auth share v1", g.TokenURL, g.Username, g.IdentityStoreID, g.ClientID, g.Scope} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	id := hex.EncodeToString(m.Sum(nil))
	return "groupid_auth/" + id, "groupid_auth_" + id
}

// subkey derives a key for one purpose from the share key.
func subkey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// storageShare is tokencache.Shared over a certmagic.Storage: one
// encrypted entry under a derived key and a lock of a derived name.
type storageShare struct {
	// storages are the storage of each config load that uses the
	// credential; the running config's is used (the newest one's before
	// any runs). Guarded by loaded's mutex, like the credential's
	// transports, so a failed load's storage is never used.
	storages map[configID]certmagic.Storage
	newest   configID
	key      string
	leaseKey string
	lockName string
	aead     cipher.AEAD

	// mu guards the fields below. Only the credential's refresh goroutine
	// locks and unlocks, but tests and the beat goroutine read them.
	mu sync.Mutex
	// beatStop ends the lease heartbeat of the lock this replica holds.
	beatStop chan struct{}
	beatDone chan struct{}
	// seenLease and seenAt: the lease content a waiter last saw, and when
	// (this host's clock) it first saw it.
	seenLease string
	seenAt    time.Time
	// lockBreaks counts locks broken because their lease went stale.
	lockBreaks atomic.Uint64
}

// newStorageShare returns the share of grant g under the share key.
func newStorageShare(shareKey []byte, g tokencache.Grant) (*storageShare, error) {
	block, err := aes.NewCipher(subkey(shareKey, "groupid_auth share encryption v1"))
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	s := &storageShare{aead: aead}
	s.key, s.lockName = shareNames(shareKey, g)
	s.leaseKey = s.key + ".lease"
	return s, nil
}

// use makes st the storage of later calls (that of the newest config).
// use records the storage of config cfg. Call with loaded's mutex not held.
func (s *storageShare) use(cfg configID, st certmagic.Storage) {
	loaded.Lock()
	defer loaded.Unlock()
	if s.storages == nil {
		s.storages = map[configID]certmagic.Storage{}
	}
	s.storages[cfg] = st
	s.newest = cfg
}

// forget drops config cfg's storage. Call with loaded's mutex held.
func (s *storageShare) forget(cfg configID) {
	delete(s.storages, cfg)
	if s.newest == cfg {
		s.newest = nil
		for other := range s.storages {
			s.newest = other
			break
		}
	}
}

// st is the storage of the running config, or of the newest one.
func (s *storageShare) st() (certmagic.Storage, error) {
	active := activeConfig()
	loaded.Lock()
	st, ok := s.storages[active]
	if !ok {
		st = s.storages[s.newest]
	}
	loaded.Unlock()
	if st == nil {
		return nil, errors.New("no storage")
	}
	return st, nil
}

// entryVersion is the first byte of a stored entry: the format.
const entryVersion = 1

// seal encrypts e: version byte, random nonce, AES-GCM ciphertext with the
// storage key as additional data (an entry copied under another name does
// not open).
func (s *storageShare) seal(e *tokencache.SharedEntry) ([]byte, error) {
	plain, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = entryVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	sealed := s.aead.Seal(out, out[1:], plain, []byte(s.key))
	clear(plain)
	return sealed, nil
}

// open decrypts what seal wrote.
func (s *storageShare) open(b []byte) (*tokencache.SharedEntry, error) {
	ns := s.aead.NonceSize()
	if len(b) < 1+ns || b[0] != entryVersion {
		return nil, tokencache.ErrShareCorrupt
	}
	plain, err := s.aead.Open(nil, b[1:1+ns], b[1+ns:], []byte(s.key))
	if err != nil {
		return nil, tokencache.ErrShareCorrupt
	}
	defer clear(plain)
	var e tokencache.SharedEntry
	if err := json.Unmarshal(plain, &e); err != nil {
		return nil, tokencache.ErrShareCorrupt
	}
	return &e, nil
}

// Load implements tokencache.Shared.
func (s *storageShare) Load(ctx context.Context) (*tokencache.SharedEntry, error) {
	st, err := s.st()
	if err != nil {
		return nil, err
	}
	b, err := st.Load(ctx, s.key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.open(b)
}

// Store implements tokencache.Shared.
func (s *storageShare) Store(ctx context.Context, e *tokencache.SharedEntry) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	b, err := s.seal(e)
	if err != nil {
		return err
	}
	return st.Store(ctx, s.key, b)
}

// Delete implements tokencache.Shared.
func (s *storageShare) Delete(ctx context.Context) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	if err := st.Delete(ctx, s.key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// The lock's lease. CertMagic's file storage keeps a lock file fresh from a
// goroutine that outlives the lock: if the same replica took and released
// the lock within its 5 s refresh interval, that goroutine keeps refreshing
// the next holder's lock file, so a holder that dies is never seen as
// stale. Lock therefore keeps a lease of its own next to the lock: the
// holder rewrites it every leaseBeat until it unlocks; a waiter that sees
// the same lease content for leaseStale (by its own clock, so clock skew
// between hosts does not matter) breaks the lock.
const (
	leaseBeat  = 2 * time.Second
	leaseStale = 3 * leaseBeat
	// lockTry is how long one storage Lock call may wait before the lease
	// is checked again (CertMagic's file storage polls every second).
	lockTry = 1500 * time.Millisecond
)

// Lock implements tokencache.Shared: the storage lock, waiting until ctx is
// done, breaking a lock whose lease went stale.
func (s *storageShare) Lock(ctx context.Context) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	for {
		try, cancel := context.WithTimeout(ctx, lockTry)
		err := st.Lock(try, s.lockName)
		cancel()
		if err == nil {
			s.startLease(st)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if s.leaseStale(ctx, st) {
			s.lockBreaks.Add(1)
			_ = st.Unlock(ctx, s.lockName)
			_ = st.Delete(ctx, s.leaseKey)
		}
	}
}

// leaseStale reports whether the lease has shown the same content (or none)
// for leaseStale, as this replica observed it.
func (s *storageShare) leaseStale(ctx context.Context, st certmagic.Storage) bool {
	b, err := st.Load(ctx, s.leaseKey)
	content := string(b)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		content = "(none)"
	case err != nil:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if content != s.seenLease || s.seenAt.IsZero() {
		s.seenLease, s.seenAt = content, now
		return false
	}
	if now.Sub(s.seenAt) < leaseStale {
		return false
	}
	s.seenLease, s.seenAt = "", time.Time{}
	return true
}

// startLease writes the lease of the lock just taken and keeps rewriting
// it until Unlock.
func (s *storageShare) startLease(st certmagic.Storage) {
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	stop, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.beatStop, s.beatDone = stop, done
	s.mu.Unlock()
	write := func(seq int) {
		ctx, cancel := context.WithTimeout(context.Background(), leaseBeat)
		defer cancel()
		_ = st.Store(ctx, s.leaseKey, []byte(fmt.Sprintf(`{"owner":"%x","beat":%d}`, owner, seq)))
	}
	write(0)
	go func() {
		defer close(done)
		t := time.NewTicker(leaseBeat)
		defer t.Stop()
		for seq := 1; ; seq++ {
			select {
			case <-stop:
				return
			case <-t.C:
				write(seq)
			}
		}
	}()
}

// Unlock implements tokencache.Shared: ends the lease, then the lock.
func (s *storageShare) Unlock(ctx context.Context) error {
	st, err := s.st()
	if err != nil {
		return err
	}
	s.mu.Lock()
	stop, done := s.beatStop, s.beatDone
	s.beatStop, s.beatDone = nil, nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	_ = st.Delete(ctx, s.leaseKey)
	return st.Unlock(ctx, s.lockName)
}

// loadShareStorage returns the storage of the share block: its inline
// module, or the config's storage.
func (h *Handler) loadShareStorage(ctx caddy.Context) (certmagic.Storage, error) {
	if h.Share.StorageRaw == nil {
		if st := configStorage(ctx); st != nil {
			return st, nil
		}
		return caddy.DefaultStorage, nil
	}
	val, err := ctx.LoadModule(h.Share, "StorageRaw")
	if err != nil {
		return nil, fmt.Errorf("share.storage: loading storage module: %w", err)
	}
	conv, ok := val.(caddy.StorageConverter)
	if !ok {
		return nil, errors.New("share.storage: module is not a storage")
	}
	st, err := conv.CertMagicStorage()
	if err != nil {
		return nil, fmt.Errorf("share.storage: %w", err)
	}
	return st, nil
}

// configStorage is ctx.Storage(), or nil for a context without a config
// (which ctx.Storage would dereference).
func configStorage(ctx caddy.Context) (st certmagic.Storage) {
	defer func() {
		if recover() != nil {
			st = nil
		}
	}()
	return ctx.Storage()
}

var _ tokencache.Shared = (*storageShare)(nil)

// shareSpec is what the pool needs to share a credential: nil when
// sharing is off.
type shareSpec struct {
	key           []byte
	storage       certmagic.Storage
	storageRaw    string
	lockTimeout   time.Duration
	checkInterval time.Duration
}

// shareSpec decodes the key and loads the share block's storage module (or
// takes the config's storage); nil when sharing is off. The storage is
// first used by the credential's refresh goroutine, never here.
func (h *Handler) shareSpec(ctx caddy.Context) (*shareSpec, error) {
	if h.Share == nil {
		return nil, nil
	}
	key, err := decodeShareKey(h.Share.Key)
	if err != nil {
		return nil, err
	}
	st, err := h.loadShareStorage(ctx)
	if err != nil {
		return nil, err
	}
	lt := time.Duration(h.Share.LockTimeout)
	if lt == 0 {
		lt = tokencache.DefaultShareLockTimeout
	}
	return &shareSpec{key: key, storage: st, storageRaw: string(h.Share.StorageRaw),
		lockTimeout: lt, checkInterval: time.Duration(h.Share.CheckInterval)}, nil
}

// poolKey is the part of the credential's pool key that sharing changes:
// a keyed hash, never the key or a storage password.
func (s *shareSpec) poolKey() string {
	if s == nil {
		return "share:off"
	}
	return tokencache.HashFields("share:on", hex.EncodeToString(s.key), s.storageRaw, s.lockTimeout.String(), s.checkInterval.String())
}
