package tokencache

import (
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// Store holds tokens keyed by Grant.Key, backed by go-cache. It is shared
// by the Sources of a process: when a Source is created for a credential
// whose token is still held (for example after a config change that did not
// touch the credential), it starts from that token without a request.
//
// Entries carry a go-cache expiration equal to the token's remaining life
// on the wall clock; validity is still checked against each Source's clock,
// so a fake clock in tests is honoured. No janitor goroutine is started;
// expired entries are swept on every Put.
type Store struct {
	c *gocache.Cache
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{c: gocache.New(gocache.NoExpiration, 0)}
}

// Get returns the token stored for key, if any (it may be expired).
func (s *Store) Get(key string) *Token {
	v, ok := s.c.Get(key)
	if !ok {
		return nil
	}
	return v.(*Token)
}

// Put stores tok for key for its remaining life measured from now.
func (s *Store) Put(key string, tok *Token, now time.Time) {
	s.c.DeleteExpired()
	life := tok.Expiry.Sub(now)
	if life <= 0 {
		s.c.Delete(key)
		return
	}
	s.c.Set(key, tok, life)
}

// Delete forgets the token for key.
func (s *Store) Delete(key string) { s.c.Delete(key) }

// Len returns the number of entries, expired or not.
func (s *Store) Len() int { return s.c.ItemCount() }
