package groupidsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// createUser: POST /IdentityStores/{is}/Users with a JSON object body. The
// properties are stored as sent; the reply envelope carries the new GUID.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ []string) {
	props, ok := readObject(w, r)
	if !ok {
		return
	}
	stripIdentity(props)
	id := newGUID()
	d := s.dir
	d.mu.Lock()
	d.users[id] = &object{id: id, typ: "user", props: props}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, okEnvelope(id, "User created successfully."))
}

// getUser: GET /IdentityStores/{is}/Users/{user}; 404 when unknown.
func (s *Server) getUser(w http.ResponseWriter, _ *http.Request, args []string) {
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.findUser(args[0])
	if u == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, d.render(u, nil))
}

// getUsersRequest is the JSON body of GET /IdentityStores/{is}/Users.
// encoding/json matches these field names case-insensitively.
type getUsersRequest struct {
	ObjectIdentities []string `json:"objectIdentities"`
	AttributesToLoad []string `json:"attributesToLoad"`
}

// getUsers: GET /IdentityStores/{is}/Users with a JSON body naming the users
// and attributes. Without objectIdentities every user is returned; unknown
// identities are skipped.
func (s *Server) getUsers(w http.ResponseWriter, r *http.Request, _ []string) {
	body, _ := io.ReadAll(r.Body)
	var req getUsersRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			badRequest(w, "$", "The request body must be a JSON object.")
			return
		}
	}
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	var found []*object
	if req.ObjectIdentities == nil {
		for _, u := range d.users {
			found = append(found, u)
		}
		sortObjects(found, false)
	} else {
		for _, ident := range req.ObjectIdentities {
			if u := d.findUser(ident); u != nil {
				found = append(found, u)
			}
		}
	}
	out := make([]map[string]json.RawMessage, 0, len(found))
	for _, u := range found {
		out = append(out, d.render(u, req.AttributesToLoad))
	}
	writeJSON(w, http.StatusOK, out)
}

// updateUser: PATCH /IdentityStores/{is}/Users. The body names the user in
// objectIdFromIdentityStore or objectIdentity (any casing); every other
// property except IdentityStoreID is stored under exactly the name sent.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, _ []string) {
	props, ok := readObject(w, r)
	if !ok {
		return
	}
	var ident string
	for _, k := range identityKeys {
		if ident = stringProp(props, k); ident != "" {
			break
		}
	}
	if ident == "" {
		badRequest(w, "objectIdFromIdentityStore", "The user identity is required.")
		return
	}
	stripIdentity(props)
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.findUser(ident)
	if u == nil {
		writeJSON(w, http.StatusOK, failedEnvelope(errObjectNotFound, "User not found: "+ident))
		return
	}
	res := okEnvelope(u.id, "User updated successfully.")
	for k, v := range props {
		if strings.EqualFold(k, "IdentityStoreID") {
			continue
		}
		u.props[k] = v
		res.Details = append(res.Details, envelope{Name: strPtr(k), Data: "", Details: []envelope{}})
	}
	writeJSON(w, http.StatusOK, res)
}

// deleteUser: DELETE /IdentityStores/{is}/Users/{user}.
func (s *Server) deleteUser(w http.ResponseWriter, _ *http.Request, args []string) {
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.removeUser(args[0]) {
		writeJSON(w, http.StatusOK, failedEnvelope(errObjectNotFound, "User not found: "+args[0]))
		return
	}
	writeJSON(w, http.StatusOK, okEnvelope("", "User deleted successfully."))
}

// deleteUsers: DELETE /IdentityStores/{is}/Users with a JSON array of user
// identities. Each identity gets a detail entry; the overall status fails if
// any identity was unknown.
func (s *Server) deleteUsers(w http.ResponseWriter, r *http.Request, _ []string) {
	body, _ := io.ReadAll(r.Body)
	ids, ok := decodeStrings(body, false)
	if !ok {
		badRequest(w, "$", "The request body must be a JSON array of user identities.")
		return
	}
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	res := okEnvelope("", "Users deleted successfully.")
	for _, id := range ids {
		detail := okEnvelope(id, "")
		if !d.removeUser(id) {
			detail = failedEnvelope(errObjectNotFound, "User not found: "+id)
			detail.Data = id
			res.Status, res.ErrorCode, res.Message = envelopeFailed, strPtr(errObjectNotFound), strPtr("Some users were not found.")
		}
		res.Details = append(res.Details, detail)
	}
	writeJSON(w, http.StatusOK, res)
}

// removeUser deletes a user and its memberships. Callers hold d.mu.
func (d *directory) removeUser(ident string) bool {
	u := d.findUser(ident)
	if u == nil {
		return false
	}
	delete(d.users, u.id)
	for _, g := range d.groups {
		delete(g.members, u.id)
		delete(g.owners, u.id)
	}
	return true
}
