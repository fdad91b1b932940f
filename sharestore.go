package groupidauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

// shareNames derives the storage key and lock name of a grant: an
// HMAC-SHA256 under the share key over the grant's non-secret identity, so
// every replica with the same key and settings finds the same entry, and
// the name reveals nothing without the key. Never from the password or
// client secret (form params' values are in it, under the HMAC), and not
// from tokencache.Grant.Key, which is salted per process.
func shareNames(key []byte, g tokencache.Grant) (storageKey, lockName string) {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	fields := []string{"groupid_auth share v1", g.TokenURL, g.Username, g.IdentityStoreID, g.ClientID, g.Scope}
	for _, p := range g.FormParams {
		// Form params change the token (its audience, say); they are
		// given in name order. None: the same names as before they existed.
		fields = append(fields, "form_param", p.Name, p.Value)
	}
	for _, f := range fields {
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
	// storage is the running config's storage (nil before one runs).
	storage  func() certmagic.Storage
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
// storage returns the running config's storage.
func newStorageShare(shareKey []byte, g tokencache.Grant, storage func() certmagic.Storage) (*storageShare, error) {
	block, err := aes.NewCipher(subkey(shareKey, "groupid_auth share encryption v1"))
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("share: %w", err)
	}
	s := &storageShare{aead: aead, storage: storage}
	s.key, s.lockName = shareNames(shareKey, g)
	s.leaseKey = s.key + ".lease"
	return s, nil
}

// st is the running config's storage.
func (s *storageShare) st() (certmagic.Storage, error) {
	if st := s.storage(); st != nil {
		return st, nil
	}
	return nil, errors.New("no storage")
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

var _ tokencache.Shared = (*storageShare)(nil)
