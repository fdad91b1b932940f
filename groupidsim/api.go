package groupidsim

import (
	"net/http"
	"strconv"
	"strings"
)

// endpoint is one Data API route. Pattern segments match case-insensitively;
// "{}" matches any single segment and is passed to handle in args.
type endpoint struct {
	pattern []string
	method  string
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, args []string)
}

// groupViews are the "my groups" variants under Users/{user}/Groups.
var groupViews = []string{"All", "Membership", "Expiring", "Expired", "Dynasties", "SmartGroups"}

// dataEndpoints are the routes under {DataPrefix}/api/. More specific
// patterns come first.
var dataEndpoints = buildDataEndpoints()

// securityEndpoints are the routes under {SecurityPrefix}/api/.
var securityEndpoints = []endpoint{
	{[]string{"Logs", "Download"}, http.MethodGet, (*Server).downloadLogs},
}

func buildDataEndpoints() []endpoint {
	users := []string{"IdentityStores", "{}", "Users"}
	user := append(users[:3:3], "{}")
	myGroups := append(user[:4:4], "Groups")
	groups := []string{"IdentityStores", "{}", "Groups"}
	eps := []endpoint{
		{[]string{"Logs", "Download"}, http.MethodGet, (*Server).downloadLogs},
		{users, http.MethodPost, storeScoped((*Server).createUser)},
		{users, http.MethodGet, storeScoped((*Server).getUsers)},
		{users, http.MethodPatch, storeScoped((*Server).updateUser)},
		{users, http.MethodDelete, storeScoped((*Server).deleteUsers)},
		{user, http.MethodGet, storeScoped((*Server).getUser)},
		{user, http.MethodDelete, storeScoped((*Server).deleteUser)},
		{myGroups, http.MethodGet, storeScoped(myGroupsHandler("", false))},
		{append(myGroups[:5:5], "count"), http.MethodGet, storeScoped(myGroupsHandler("", true))},
	}
	for _, v := range groupViews {
		p := append(myGroups[:5:5], v)
		eps = append(eps,
			endpoint{p, http.MethodGet, storeScoped(myGroupsHandler(v, false))},
			endpoint{append(p[:6:6], "count"), http.MethodGet, storeScoped(myGroupsHandler(v, true))},
		)
	}
	return append(eps,
		endpoint{append(groups[:3:3], "StaticGroup"), http.MethodPost, storeScoped((*Server).createStaticGroup)},
		endpoint{append(groups[:3:3], "{}"), http.MethodGet, storeScoped((*Server).getGroup)},
		endpoint{append(groups[:3:3], "{}", "JoinOnBehalf"), http.MethodPost, storeScoped((*Server).joinOnBehalf)},
	)
}

// storeScoped wraps a handler whose first argument is the identity store:
// a store the simulator does not serve is 404; a token issued for another
// store is 401 (and counted).
func storeScoped(h func(s *Server, w http.ResponseWriter, r *http.Request, args []string)) func(*Server, http.ResponseWriter, *http.Request, []string) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, args []string) {
		store, ok := s.store(args[0])
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if issued := s.tokenStoreOf(bearer(r)); issued != "" && issued != store {
			s.mu.Lock()
			s.counters.WrongStoreTokens[store]++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token is for another identity store"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h(s, w, r, args[1:])
	}
}

// store returns the configured spelling of identity store id, if served.
func (s *Server) store(id string) (string, bool) {
	for _, st := range append([]string{s.cfg.IdentityStoreID}, s.cfg.ExtraIdentityStores...) {
		if sameStore(id, st) {
			return st, true
		}
	}
	return "", false
}

// bearer is the request's bearer token as authenticate reads it.
func bearer(r *http.Request) string {
	h := strings.Join(r.Header.Values("Authorization"), ",")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// sameStore compares identity store IDs, numerically when both are numbers.
func sameStore(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return err1 == nil && err2 == nil && x == y
}

// serveAPI routes like ASP.NET: unknown path 404, known path with another
// verb 405, then bearer authentication, then the handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, table []endpoint, rest string) {
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	var allowed []string
	for _, ep := range table {
		args, ok := matchSegments(ep.pattern, segs)
		if !ok {
			continue
		}
		if ep.method != r.Method {
			allowed = append(allowed, ep.method)
			continue
		}
		if s.authenticate(w, r) {
			ep.handle(s, w, r, args)
		}
		return
	}
	if len(allowed) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	w.WriteHeader(http.StatusMethodNotAllowed)
}

func matchSegments(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var args []string
	for i, p := range pattern {
		switch {
		case p == "{}":
			if segs[i] == "" {
				return nil, false
			}
			args = append(args, segs[i])
		case !strings.EqualFold(p, segs[i]):
			return nil, false
		}
	}
	return args, true
}

// authenticate checks the bearer token the way ASP.NET JwtBearer does and
// answers 401 itself when it fails. Several Authorization headers are
// joined with commas before parsing, as ASP.NET sees them.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) bool {
	token := bearer(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	switch s.checkAccess(token) {
	case accessValid:
		return true
	case accessExpired:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token expired"`)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The token is invalid"`)
	}
	w.WriteHeader(http.StatusUnauthorized)
	return false
}
