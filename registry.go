package groupidauth

import (
	"net/url"
	"sort"
	"sync"
)

// credentials maps a credential's name to the newest token source that
// carries it, for the readiness handler, the admin API and metrics. During
// a reload that changes a credential, the old and the new source briefly
// share a name; the newest wins and the old one's removal does not remove it.
var credentials = struct {
	sync.Mutex
	byName map[string]*sharedSource
}{byName: map[string]*sharedSource{}}

func registerCredential(s *sharedSource) {
	credentials.Lock()
	credentials.byName[s.info.Name] = s
	credentials.Unlock()
}

func unregisterCredential(s *sharedSource) {
	credentials.Lock()
	if credentials.byName[s.info.Name] == s {
		delete(credentials.byName, s.info.Name)
	}
	credentials.Unlock()
}

// lookupCredentials returns the sources with the given name, or all of them
// (sorted by name) when name is empty.
func lookupCredentials(name string) []*sharedSource {
	credentials.Lock()
	defer credentials.Unlock()
	if name != "" {
		if s, ok := credentials.byName[name]; ok {
			return []*sharedSource{s}
		}
		return nil
	}
	out := make([]*sharedSource, 0, len(credentials.byName))
	for _, s := range credentials.byName {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.Name < out[j].info.Name })
	return out
}

// credentialInfo is what may be shown about a credential: never a secret.
type credentialInfo struct {
	Name            string `json:"name"`
	TokenHost       string `json:"token_endpoint_host"`
	Username        string `json:"username"`
	IdentityStoreID string `json:"identity_store_id"`
}

// defaultName derives a credential name from non-secret fields:
// username@host/identity_store_id.
func defaultName(username, tokenURL, store string) string {
	return username + "@" + tokenHost(tokenURL) + "/" + store
}

// tokenHost is the host:port of the token URL.
func tokenHost(tokenURL string) string {
	if u, err := url.Parse(tokenURL); err == nil {
		return u.Host
	}
	return ""
}
