package groupidsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Stable GUIDs of the seeded directory objects.
const (
	// SeedUserID is the directory object of the service account
	// (samAccountName = Config.Username). It owns and is a member of all
	// SeedGroupCount seeded groups.
	SeedUserID = "3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f01"
	// SeedUserAliceID is a plain user, member of the first three seeded groups.
	SeedUserAliceID = "3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f02"
	// SeedUserBobID is a plain user with no memberships.
	SeedUserBobID = "3f9a6c1e-2b7d-4e58-9a41-6d0c5b8e7f03"
	// SeedGroupID is the first seeded group ("Sim Group 01"). Seeded group n
	// (1..SeedGroupCount) has the same GUID with the last two digits set to
	// n in decimal; see SeedGroupIDN.
	SeedGroupID = "b71e4d2a-9c35-4f80-8e16-5a2d0c9f4301"
	// SeedGroupCount is how many groups are seeded.
	SeedGroupCount = 45
)

// SeedGroupIDN returns the GUID of seeded group n (1-based).
func SeedGroupIDN(n int) string {
	return fmt.Sprintf("%s%02d", SeedGroupID[:len(SeedGroupID)-2], n)
}

// Group classes and expiry states of seeded groups. Group n is Smart when n
// is a multiple of 5, a Dynasty when a multiple of 9 (and not of 5), else
// Static; it is Expired when n is a multiple of 11, Expiring when a multiple
// of 7, else Active.
const (
	classStatic  = "Static"
	classSmart   = "Smart"
	classDynasty = "Dynasty"

	expiryActive   = "Active"
	expiryExpiring = "Expiring"
	expiryExpired  = "Expired"
)

// object is a user or group. props holds the properties exactly as they
// were sent or seeded, names in their original casing.
type object struct {
	id      string // lower-case GUID
	typ     string // "user" or "group"
	props   map[string]json.RawMessage
	class   string          // groups
	expiry  string          // groups
	members map[string]bool // groups: user IDs
	owners  map[string]bool // groups: user IDs
}

// directory is the simulated identity store.
type directory struct {
	mu      sync.Mutex
	storeID json.RawMessage
	users   map[string]*object
	groups  map[string]*object
}

func newDirectory(cfg Config) *directory {
	d := &directory{users: map[string]*object{}, groups: map[string]*object{}}
	d.storeID, _ = json.Marshal(cfg.IdentityStoreID)
	if n, err := json.Number(cfg.IdentityStoreID).Int64(); err == nil {
		d.storeID, _ = json.Marshal(n)
	}
	d.seed(cfg.Username)
	return d
}

// rawProps marshals seed values into stored properties.
func rawProps(kv map[string]any) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(kv))
	for k, v := range kv {
		out[k], _ = json.Marshal(v)
	}
	return out
}

func (d *directory) seed(username string) {
	addUser := func(id string, props map[string]any) {
		d.users[id] = &object{id: id, typ: "user", props: rawProps(props)}
	}
	addUser(SeedUserID, map[string]any{
		"displayName":       "GroupID Service Account",
		"samAccountName":    username,
		"userPrincipalName": username + "@sim.local",
		"mail":              username + "@sim.local",
		"department":        "IT",
	})
	addUser(SeedUserAliceID, map[string]any{
		"displayName":    "Alice Example",
		"samAccountName": "alice",
		"givenName":      "Alice",
		"sn":             "Example",
		"mail":           "alice@sim.local",
		"Department":     "Engineering",
	})
	addUser(SeedUserBobID, map[string]any{
		"displayName":    "Bob Example",
		"samAccountName": "bob",
		"givenName":      "Bob",
		"sn":             "Example",
		"mail":           "bob@sim.local",
		"Department":     "QA",
	})
	for n := 1; n <= SeedGroupCount; n++ {
		g := &object{
			id: SeedGroupIDN(n), typ: "group",
			class: classStatic, expiry: expiryActive,
			members: map[string]bool{SeedUserID: true},
			owners:  map[string]bool{SeedUserID: true},
		}
		switch {
		case n%5 == 0:
			g.class = classSmart
		case n%9 == 0:
			g.class = classDynasty
		}
		switch {
		case n%11 == 0:
			g.expiry = expiryExpired
		case n%7 == 0:
			g.expiry = expiryExpiring
		}
		if n <= 3 {
			g.members[SeedUserAliceID] = true
		}
		g.props = rawProps(map[string]any{
			"displayName":      fmt.Sprintf("Sim Group %02d", n),
			"samAccountName":   fmt.Sprintf("SimGroup%02d", n),
			"groupClassName":   g.class,
			"expirationStatus": g.expiry,
			"XGroupSecurity":   "Semi_Private",
		})
		d.groups[g.id] = g
	}
}

// newGUID returns a random version 4 GUID in lower case.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// identityKeys are the property names (any casing) that name an object.
var identityKeys = []string{"objectIdFromIdentityStore", "objectIdentity"}

// stripIdentity removes identity properties from props.
func stripIdentity(props map[string]json.RawMessage) {
	for k := range props {
		for _, id := range identityKeys {
			if strings.EqualFold(k, id) {
				delete(props, k)
			}
		}
	}
}

// findUser resolves a GUID, samAccountName or userPrincipalName.
// Callers hold d.mu.
func (d *directory) findUser(ident string) *object {
	if u := d.users[strings.ToLower(ident)]; u != nil {
		return u
	}
	for _, u := range d.users {
		if strings.EqualFold(stringProp(u.props, "samAccountName"), ident) ||
			strings.EqualFold(stringProp(u.props, "userPrincipalName"), ident) {
			return u
		}
	}
	return nil
}

// findGroup resolves a GUID or samAccountName. Callers hold d.mu.
func (d *directory) findGroup(ident string) *object {
	if g := d.groups[strings.ToLower(ident)]; g != nil {
		return g
	}
	for _, g := range d.groups {
		if strings.EqualFold(stringProp(g.props, "samAccountName"), ident) {
			return g
		}
	}
	return nil
}

// displayName picks the best human name for o.
func displayName(o *object) string {
	for _, k := range []string{"displayName", "GroupName", "name", "samAccountName"} {
		if v := stringProp(o.props, k); v != "" {
			return v
		}
	}
	return ""
}

// render builds the JSON view of o. With attrs set, only stored properties
// whose names match one of attrs (ignoring case) are included; the
// identifying fields are always present. Callers hold d.mu.
func (d *directory) render(o *object, attrs []string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range o.props {
		if attrs == nil || containsFold(attrs, k) {
			out[k] = v
		}
	}
	out["objectIdFromIdentityStore"], _ = json.Marshal(o.id)
	out["objectType"], _ = json.Marshal(o.typ)
	out["identityStoreId"] = d.storeID
	out["objectDisplayName"], _ = json.Marshal(displayName(o))
	return out
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// sortObjects orders objects by display name, then GUID; descending reverses.
func sortObjects(list []*object, descending bool) {
	sort.Slice(list, func(i, j int) bool {
		a, b := strings.ToLower(displayName(list[i])), strings.ToLower(displayName(list[j]))
		if a == b {
			a, b = list[i].id, list[j].id
		}
		if descending {
			return a > b
		}
		return a < b
	})
}

// GroupMembers returns the user GUIDs that are members of the group, sorted,
// or nil if there is no such group.
func (s *Server) GroupMembers(groupID string) []string {
	d := s.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.findGroup(groupID)
	if g == nil {
		return nil
	}
	out := make([]string, 0, len(g.members))
	for id := range g.members {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
