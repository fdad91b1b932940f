package groupidsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// createStaticGroup: POST /IdentityStores/{is}/Groups/StaticGroup with a
// JSON object body stored as sent. The new group has no members or owners.
func (s *Server) createStaticGroup(w http.ResponseWriter, r *http.Request, _ []string) {
	props, ok := readObject(w, r)
	if !ok {
		return
	}
	stripIdentity(props)
	g := &object{
		id: newGUID(), typ: "group", props: props,
		class: classStatic, expiry: expiryActive,
		members: map[string]bool{}, owners: map[string]bool{},
	}
	d := s.dir
	d.mu.Lock()
	d.groups[g.id] = g
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, okEnvelope(g.id, "Group created successfully."))
}

// getGroup: GET /IdentityStores/{is}/Groups/{group}, with an optional JSON
// array body of attribute names to load.
func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, args []string) {
	body, _ := io.ReadAll(r.Body)
	attrs, ok := decodeStrings(body, true)
	if !ok {
		badRequest(w, "$", "The request body must be a JSON array of attribute names.")
		return
	}
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.findGroup(args[0])
	if g == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, d.render(g, attrs))
}

// joinOnBehalf: POST /IdentityStores/{is}/Groups/{group}/JoinOnBehalf. The
// body is a JSON array of user identities, or the vendor's object form with
// joiningUserIdentity (a string or an array).
func (s *Server) joinOnBehalf(w http.ResponseWriter, r *http.Request, args []string) {
	body, _ := io.ReadAll(r.Body)
	users, ok := joiningUsers(body)
	if !ok || len(users) == 0 {
		badRequest(w, "joiningUserIdentity", "At least one user identity is required.")
		return
	}
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.findGroup(args[0])
	if g == nil {
		writeJSON(w, http.StatusOK, failedEnvelope(errObjectNotFound, "Group not found: "+args[0]))
		return
	}
	res := okEnvelope(nil, "Membership updated successfully.")
	for _, ident := range users {
		detail := okEnvelope(ident, "")
		if u := d.findUser(ident); u != nil {
			g.members[u.id] = true
		} else {
			detail = failedEnvelope(errObjectNotFound, "User not found: "+ident)
			detail.Data = ident
			res.Status, res.ErrorCode, res.Message = envelopeFailed, strPtr(errObjectNotFound), strPtr("Some users were not found.")
		}
		res.Details = append(res.Details, detail)
	}
	writeJSON(w, http.StatusOK, res)
}

// joiningUsers reads the user list of a JoinOnBehalf body.
func joiningUsers(body []byte) ([]string, bool) {
	if list, ok := decodeStrings(body, false); ok {
		return list, true
	}
	obj, ok := decodeObject(body, false)
	if !ok {
		return nil, false
	}
	_, raw, found := lookupFold(obj, "joiningUserIdentity")
	if !found {
		return nil, false
	}
	if one := stringProp(obj, "joiningUserIdentity"); one != "" {
		return []string{one}, true
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, false
	}
	return list, true
}

// groupPage is the reply of the "my groups" listings.
type groupPage struct {
	Total int                          `json:"total"`
	Data  []map[string]json.RawMessage `json:"data"`
}

// myGroupsHandler serves GET /IdentityStores/{is}/Users/{user}/Groups[/view]
// and its /count form. Views:
//
//	""          groups the user owns
//	All         groups the user owns or is a member of
//	Membership  groups the user is a member of
//	Expiring, Expired, Dynasties, SmartGroups
//	            the All set narrowed by expiry state or group class
//
// Query: pageNo (1-based, default 1), pageSize (default 20), sortOrder (1 =
// descending by display name, otherwise ascending), calculateTotal (default
// true; false reports total 0), searchMode (accepted, ignored). A JSON body
// may carry attributesToLoad.
func myGroupsHandler(view string, count bool) func(*Server, http.ResponseWriter, *http.Request, []string) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, args []string) {
		pageNo, ok1 := queryInt(r, "pageNo", 1)
		pageSize, ok2 := queryInt(r, "pageSize", 20)
		sortOrder, ok3 := queryInt(r, "sortOrder", 0)
		_, ok4 := queryInt(r, "searchMode", 0)
		calcTotal, ok5 := queryBool(r, "calculateTotal", true)
		if !(ok1 && ok2 && ok3 && ok4 && ok5) {
			badRequest(w, "query", "A paging parameter is not valid.")
			return
		}
		if pageNo < 1 {
			pageNo = 1
		}
		if pageSize < 1 {
			pageSize = 20
		}
		pageSize = min(pageSize, 1000)
		body, _ := io.ReadAll(r.Body)
		var req getUsersRequest
		if len(strings.TrimSpace(string(body))) > 0 && json.Unmarshal(body, &req) != nil {
			badRequest(w, "$", "The request body must be a JSON object.")
			return
		}

		d := s.dir
		d.mu.Lock()
		defer d.mu.Unlock()
		u := d.findUser(args[0])
		if u == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		list := d.groupsOf(u.id, view)
		if count {
			writeJSON(w, http.StatusOK, map[string]int{"count": len(list)})
			return
		}
		sortObjects(list, sortOrder == 1)
		page := groupPage{Data: []map[string]json.RawMessage{}}
		if calcTotal {
			page.Total = len(list)
		}
		if pageNo-1 <= len(list)/pageSize { // guards the multiplication
			start := (pageNo - 1) * pageSize
			for i := start; i < len(list) && i < start+pageSize; i++ {
				page.Data = append(page.Data, d.render(list[i], req.AttributesToLoad))
			}
		}
		writeJSON(w, http.StatusOK, page)
	}
}

// groupsOf selects the groups of one user for a view. Callers hold d.mu.
func (d *directory) groupsOf(userID, view string) []*object {
	var out []*object
	for _, g := range d.groups {
		owned, member := g.owners[userID], g.members[userID]
		var keep bool
		switch strings.ToLower(view) {
		case "":
			keep = owned
		case "membership":
			keep = member
		case "all":
			keep = owned || member
		case "expiring":
			keep = (owned || member) && g.expiry == expiryExpiring
		case "expired":
			keep = (owned || member) && g.expiry == expiryExpired
		case "dynasties":
			keep = (owned || member) && g.class == classDynasty
		case "smartgroups":
			keep = (owned || member) && (g.class == classSmart || g.class == classDynasty)
		}
		if keep {
			out = append(out, g)
		}
	}
	return out
}
