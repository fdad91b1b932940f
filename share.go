package groupidauth

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	// storage fails, the replica makes its own token request. At least 9s:
	// a waiter takes a dead holder's lock over once the holder's lease has
	// not changed for 6s, and it looks every 1.5s. Default: 15s.
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
	case sc.LockTimeout > 0 && time.Duration(sc.LockTimeout) < minLockTimeout:
		return fmt.Errorf("share.lock_timeout: must be at least %s, so that a waiting replica can take over the lock of a replica that died holding it (its lease is stale after %s, looked at every %s)", minLockTimeout, leaseStale, lockTry)
	case sc.CheckInterval < 0:
		return errors.New("share.check_interval: must not be negative")
	case sc.CheckInterval > 0 && time.Duration(sc.CheckInterval) < tokencache.MinShareCheckInterval:
		return errors.New("share.check_interval: must be at least 1s")
	}
	return nil
}

// loadShareStorage returns the storage of the share block: its inline
// module, or the config's storage.
func (cr *Credential) loadShareStorage(ctx caddy.Context) (certmagic.Storage, error) {
	if cr.Share.StorageRaw == nil {
		if st := configStorage(ctx); st != nil {
			return st, nil
		}
		return caddy.DefaultStorage, nil
	}
	val, err := ctx.LoadModule(cr.Share, "StorageRaw")
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
func configStorage(ctx caddy.Context) certmagic.Storage {
	var st certmagic.Storage
	func() {
		defer func() { _ = recover() }()
		st = ctx.Storage()
	}()
	return st
}

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
func (cr *Credential) shareSpec(ctx caddy.Context) (*shareSpec, error) {
	if cr.Share == nil {
		return nil, nil
	}
	key, err := decodeShareKey(cr.Share.Key)
	if err != nil {
		return nil, err
	}
	st, err := cr.loadShareStorage(ctx)
	if err != nil {
		return nil, err
	}
	lt := time.Duration(cr.Share.LockTimeout)
	if lt == 0 {
		lt = tokencache.DefaultShareLockTimeout
	}
	return &shareSpec{key: key, storage: st, storageRaw: string(cr.Share.StorageRaw),
		lockTimeout: lt, checkInterval: time.Duration(cr.Share.CheckInterval)}, nil
}

// poolKey is the part of the credential's pool key that sharing changes:
// a keyed hash, never the key or a storage password.
func (s *shareSpec) poolKey() string {
	if s == nil {
		return "share:off"
	}
	return tokencache.HashFields("share:on", hex.EncodeToString(s.key), s.storageRaw, s.lockTimeout.String(), s.checkInterval.String())
}
