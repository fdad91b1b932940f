package groupidsim

// Counters summarises the traffic the simulator has served.
type Counters struct {
	// TokenRequests counts token endpoint calls by "<grant>/<outcome>", where
	// grant is password, refresh_token or other, and outcome is ok, the OAuth
	// error code returned, fault (a fault answered instead), or
	// method_not_allowed (not a POST).
	TokenRequests map[string]int
	// APICalls counts Data API and log download calls by the HTTP status
	// returned.
	APICalls map[int]int
	// PasswordGrantsByStore counts successful password grants by the
	// identity store they named: one per token chain.
	PasswordGrantsByStore map[string]int
	// WrongStoreTokens counts Data API calls with a token issued for
	// another identity store than the path's (answered 401), by the path's
	// store.
	WrongStoreTokens map[string]int
	// Revocations counts revocation endpoint calls by outcome: revoked (a
	// live refresh token, revoked with its family), unknown (unknown,
	// expired or already revoked: answered 200 all the same),
	// access_token (answered 200, left valid), the OAuth error code
	// returned, fault, or method_not_allowed.
	Revocations map[string]int
}

func newCounters() Counters {
	return Counters{TokenRequests: map[string]int{}, APICalls: map[int]int{}, PasswordGrantsByStore: map[string]int{}, WrongStoreTokens: map[string]int{}, Revocations: map[string]int{}}
}

// Tokens returns the number of token requests for grant, whatever the outcome.
func (c Counters) Tokens(grant string) int {
	n := 0
	for k, v := range c.TokenRequests {
		if len(k) > len(grant) && k[:len(grant)] == grant && k[len(grant)] == '/' {
			n += v
		}
	}
	return n
}

// WrongStoreTotal returns the number of tokens used on another store's path.
func (c Counters) WrongStoreTotal() int {
	n := 0
	for _, v := range c.WrongStoreTokens {
		n += v
	}
	return n
}

// TokensTotal returns the number of token requests of any grant and outcome.
func (c Counters) TokensTotal() int {
	n := 0
	for _, v := range c.TokenRequests {
		n += v
	}
	return n
}

// Counters returns a snapshot copy of the counters.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newCounters()
	for k, v := range s.counters.TokenRequests {
		c.TokenRequests[k] = v
	}
	for k, v := range s.counters.APICalls {
		c.APICalls[k] = v
	}
	for k, v := range s.counters.PasswordGrantsByStore {
		c.PasswordGrantsByStore[k] = v
	}
	for k, v := range s.counters.WrongStoreTokens {
		c.WrongStoreTokens[k] = v
	}
	for k, v := range s.counters.Revocations {
		c.Revocations[k] = v
	}
	return c
}

// ResetCounters sets every counter back to zero. The refresh-reuse count,
// the request log and the issued tokens are kept.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	s.counters = newCounters()
	s.mu.Unlock()
}

// countToken adds one token request outcome. Callers must not hold s.mu.
func (s *Server) countToken(grant, outcome string) {
	s.mu.Lock()
	s.counters.TokenRequests[grant+"/"+outcome]++
	s.mu.Unlock()
}
