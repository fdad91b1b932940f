package groupidsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestDataAPIUnauthorized(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()
	path := dataAPI + "/Users/" + SeedUserID
	const plain = "Bearer"
	const invalid = `Bearer error="invalid_token", error_description="The token is invalid"`
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"missing", nil, plain},
		{"basic scheme", []string{"Authorization", "Basic Y2xpZW50OnNlY3JldA=="}, plain},
		{"empty bearer", []string{"Authorization", "Bearer "}, plain},
		{"unknown token", []string{"Authorization", "Bearer not-a-token"}, invalid},
		{"two headers", []string{"Authorization", "Bearer " + at, "Authorization", "Bearer " + at}, invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(http.MethodGet, path, nil, tc.headers...)
			wantStatus(t, r, http.StatusUnauthorized)
			if got := r.header.Get("WWW-Authenticate"); got != tc.want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.want)
			}
			if len(r.body) != 0 {
				t.Errorf("body = %q", r.body)
			}
		})
	}
	// The scheme is case-insensitive.
	wantStatus(t, h.do(http.MethodGet, path, nil, "Authorization", "bEARER "+at), http.StatusOK)
	c := h.sim.Counters()
	if c.APICalls[401] != len(cases) || c.APICalls[200] != 1 {
		t.Errorf("APICalls = %v", c.APICalls)
	}
}

func TestUserLifecycle(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()

	create := `{"Container":"OU=Users,DC=sim,DC=local","displayName":"Carol <QA> & Co","SamAccountName":"carol","Attributes":{"attributesCollection":{"sn":[{"value":"Smith","action":0}]}},"objectIdFromIdentityStore":"ignored"}`
	r := h.api(http.MethodPost, dataAPI+"/Users", at, create)
	wantStatus(t, r, http.StatusOK)
	env := r.json(t)
	id, _ := env["data"].(string)
	if len(id) != 36 || env["status"] != float64(0) || env["errorCode"] != nil {
		t.Fatalf("create envelope = %v", env)
	}
	if d, ok := env["details"].([]any); !ok || len(d) != 0 {
		t.Errorf("details = %v", env["details"])
	}
	if _, ok := env["message"].(string); !ok {
		t.Errorf("message = %v", env["message"])
	}

	r = h.api(http.MethodGet, dataAPI+"/Users/"+strings.ToUpper(id), at, "")
	wantStatus(t, r, http.StatusOK)
	if !bytes.Contains(r.body, []byte(`"displayName":"Carol <QA> & Co"`)) {
		t.Errorf("stored value altered: %s", r.body)
	}
	u := r.json(t)
	if u["SamAccountName"] != "carol" || u["Container"] == nil || u["objectIdFromIdentityStore"] != id ||
		u["identityStoreId"] != float64(2) || u["objectType"] != "user" {
		t.Errorf("user = %v", u)
	}
	if _, ok := u["Attributes"].(map[string]any)["attributesCollection"]; !ok {
		t.Errorf("nested casing lost: %v", u["Attributes"])
	}

	patch := `{"ObjectIdFromIdentityStore":"` + id + `","Title":"Lead","IdentityStoreID":"2"}`
	r = h.api(http.MethodPatch, dataAPI+"/Users", at, patch)
	wantStatus(t, r, http.StatusOK)
	if env := r.json(t); env["status"] != float64(0) || env["data"] != id {
		t.Errorf("patch envelope = %v", env)
	}
	u = h.api(http.MethodGet, dataAPI+"/Users/carol", at, "").json(t)
	if u["Title"] != "Lead" || u["title"] != nil || u["IdentityStoreID"] != nil {
		t.Errorf("patched user = %v", u)
	}

	r = h.api(http.MethodPatch, dataAPI+"/Users", at, `{"objectIdFromIdentityStore":"00000000-0000-4000-8000-000000000000","x":1}`)
	wantStatus(t, r, http.StatusOK)
	if env := r.json(t); env["status"] != float64(1) || env["errorCode"] != "ObjectNotFound" {
		t.Errorf("patch unknown = %v", env)
	}
	wantStatus(t, h.api(http.MethodPatch, dataAPI+"/Users", at, `{"Title":"x"}`), http.StatusBadRequest)
	r = h.api(http.MethodPost, dataAPI+"/Users", at, `[1,2]`)
	wantStatus(t, r, http.StatusBadRequest)
	contentTypeIs(t, r, "application/problem+json")

	r = h.api(http.MethodDelete, dataAPI+"/Users/"+id, at, "")
	wantStatus(t, r, http.StatusOK)
	if env := r.json(t); env["status"] != float64(0) {
		t.Errorf("delete envelope = %v", env)
	}
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+id, at, ""), http.StatusNotFound)
	if env := h.api(http.MethodDelete, dataAPI+"/Users/"+id, at, "").json(t); env["status"] != float64(1) {
		t.Errorf("second delete = %v", env)
	}
}

func TestGetUsersWithJSONBodyOnGet(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()
	body := `{"identityStoreID":2,"objectIdentities":["` + SeedUserAliceID + `","bob","nobody"],"attributesToLoad":["department"]}`
	r := h.api(http.MethodGet, dataAPI+"/Users", at, body)
	wantStatus(t, r, http.StatusOK)
	var users []map[string]any
	if err := json.Unmarshal(r.body, &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0]["objectIdFromIdentityStore"] != SeedUserAliceID || users[1]["objectIdFromIdentityStore"] != SeedUserBobID {
		t.Fatalf("users = %v", users)
	}
	if users[0]["Department"] != "Engineering" || users[0]["mail"] != nil || users[0]["objectDisplayName"] != "Alice Example" {
		t.Errorf("attribute filtering: %v", users[0])
	}
	reqs := h.sim.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodGet || string(last.Body) != body {
		t.Errorf("recorded GET body = %q", last.Body)
	}

	r = h.api(http.MethodGet, dataAPI+"/Users", at, "")
	wantStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &users); err != nil || len(users) != 3 {
		t.Errorf("all users: %v %s", err, r.body)
	}
}

func TestDeleteUsersWithArrayBody(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()
	body := `["` + SeedUserAliceID + `","` + SeedUserBobID + `"]`
	r := h.api(http.MethodDelete, dataAPI+"/Users", at, body)
	wantStatus(t, r, http.StatusOK)
	env := r.json(t)
	if env["status"] != float64(0) || len(env["details"].([]any)) != 2 {
		t.Errorf("envelope = %v", env)
	}
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserAliceID, at, ""), http.StatusNotFound)
	if got := h.sim.GroupMembers(SeedGroupID); len(got) != 1 || got[0] != SeedUserID {
		t.Errorf("memberships not cleaned: %v", got)
	}
	reqs := h.sim.Requests()
	if got := reqs[len(reqs)-2]; got.Method != http.MethodDelete || string(got.Body) != body {
		t.Errorf("recorded DELETE = %s %q", got.Method, got.Body)
	}

	env = h.api(http.MethodDelete, dataAPI+"/Users", at, `["`+SeedUserAliceID+`"]`).json(t)
	if env["status"] != float64(1) || env["errorCode"] != "ObjectNotFound" {
		t.Errorf("missing user envelope = %v", env)
	}
	wantStatus(t, h.api(http.MethodDelete, dataAPI+"/Users", at, `{"ids":[]}`), http.StatusBadRequest)
}

// groupsPage fetches one "my groups" page.
func groupsPage(t *testing.T, h *harness, at, path string) (int, []map[string]any) {
	t.Helper()
	r := h.api(http.MethodGet, path, at, "")
	wantStatus(t, r, http.StatusOK)
	var page struct {
		Total int              `json:"total"`
		Data  []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Total, page.Data
}

func groupCount(t *testing.T, h *harness, at, path string) int {
	t.Helper()
	r := h.api(http.MethodGet, path, at, "")
	wantStatus(t, r, http.StatusOK)
	var c struct {
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(r.body, &c); err != nil || c.Count == nil {
		t.Fatalf("count body %q: %v", r.body, err)
	}
	return *c.Count
}

func TestMyGroupsPagingAndCount(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()
	base := dataAPI + "/Users/" + SeedUserID + "/Groups"

	total, data := groupsPage(t, h, at, base)
	if total != SeedGroupCount || len(data) != 20 || data[0]["objectDisplayName"] != "Sim Group 01" {
		t.Fatalf("page 1: total %d, %d items, first %v", total, len(data), data[0]["objectDisplayName"])
	}
	total, data = groupsPage(t, h, at, base+"?pageNo=3&pageSize=20&calculateTotal=true&searchMode=0")
	if total != 45 || len(data) != 5 || data[4]["objectDisplayName"] != "Sim Group 45" {
		t.Errorf("page 3: total %d, %d items", total, len(data))
	}
	_, data = groupsPage(t, h, at, base+"?PAGENO=4")
	if len(data) != 0 {
		t.Errorf("page 4 has %d items", len(data))
	}
	total, data = groupsPage(t, h, at, base+"/All?sortOrder=1&pageSize=10&calculateTotal=false")
	if total != 0 || len(data) != 10 || data[0]["objectDisplayName"] != "Sim Group 45" {
		t.Errorf("descending page: total %d, first %v", total, data[0]["objectDisplayName"])
	}
	// By samAccountName, case-insensitive path segments.
	if n := groupCount(t, h, at, "/groupiddataservice/API/identitystores/2/users/SVC-GROUPID/groups/count"); n != 45 {
		t.Errorf("count = %d", n)
	}
	counts := map[string]int{
		"/Membership/count":  45,
		"/All/count":         45,
		"/Expiring/count":    6,  // 7, 14, 21, 28, 35, 42
		"/Expired/count":     4,  // 11, 22, 33, 44
		"/Dynasties/count":   4,  // 9, 18, 27, 36 (45 is Smart)
		"/SmartGroups/count": 13, // nine multiples of 5 plus the four dynasties
	}
	for suffix, want := range counts {
		if n := groupCount(t, h, at, base+suffix); n != want {
			t.Errorf("%s = %d, want %d", suffix, n, want)
		}
	}
	alice := dataAPI + "/Users/" + SeedUserAliceID + "/Groups"
	if n := groupCount(t, h, at, alice+"/Membership/count"); n != 3 {
		t.Errorf("alice memberships = %d", n)
	}
	if n := groupCount(t, h, at, alice+"/count"); n != 0 {
		t.Errorf("alice owned = %d", n)
	}

	// Attribute filtering via a JSON body on GET.
	r := h.api(http.MethodGet, base+"?pageSize=1", at, `{"attributesToLoad":["displayName"]}`)
	if !strings.Contains(string(r.body), `"displayName":"Sim Group 01"`) || strings.Contains(string(r.body), "XGroupSecurity") {
		t.Errorf("filtered page = %s", r.body)
	}
	wantStatus(t, h.api(http.MethodGet, base+"?pageNo=abc", at, ""), http.StatusBadRequest)
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/nobody/Groups", at, ""), http.StatusNotFound)
	wantStatus(t, h.api(http.MethodGet, base+"/Unknown", at, ""), http.StatusNotFound)
}

func TestGroupsCreateGetJoin(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()

	r := h.api(http.MethodGet, dataAPI+"/Groups/"+SeedGroupID, at, `["displayName","ObjectGuid"]`)
	wantStatus(t, r, http.StatusOK)
	g := r.json(t)
	if g["displayName"] != "Sim Group 01" || g["objectIdFromIdentityStore"] != SeedGroupID || g["groupClassName"] != nil {
		t.Errorf("group = %v", g)
	}
	g = h.api(http.MethodGet, dataAPI+"/Groups/"+SeedGroupIDN(45), at, "").json(t)
	if g["groupClassName"] != "Smart" || g["expirationStatus"] != "Active" {
		t.Errorf("group 45 = %v", g)
	}
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Groups/00000000-0000-4000-8000-000000000000", at, ""), http.StatusNotFound)
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Groups/"+SeedGroupID, at, `{"not":"an array"}`), http.StatusBadRequest)

	r = h.api(http.MethodPost, dataAPI+"/Groups/StaticGroup", at, `{"GroupName":"Team","Container":"OU=Groups,DC=sim,DC=local"}`)
	wantStatus(t, r, http.StatusOK)
	gid, _ := r.json(t)["data"].(string)
	g = h.api(http.MethodGet, dataAPI+"/Groups/"+gid, at, "").json(t)
	if g["GroupName"] != "Team" || g["objectDisplayName"] != "Team" {
		t.Errorf("new group = %v", g)
	}

	r = h.api(http.MethodPost, dataAPI+"/Groups/"+gid+"/JoinOnBehalf", at, `["`+SeedUserBobID+`","alice"]`)
	wantStatus(t, r, http.StatusOK)
	if env := r.json(t); env["status"] != float64(0) || len(env["details"].([]any)) != 2 {
		t.Errorf("join envelope = %v", env)
	}
	if got := h.sim.GroupMembers(gid); len(got) != 2 {
		t.Errorf("members = %v", got)
	}
	bob := dataAPI + "/Users/" + SeedUserBobID + "/Groups/Membership"
	if _, data := groupsPage(t, h, at, bob); len(data) != 1 || data[0]["objectIdFromIdentityStore"] != gid {
		t.Errorf("bob memberships = %v", data)
	}
	// The vendor's object form.
	r = h.api(http.MethodPost, dataAPI+"/Groups/"+SeedGroupIDN(2)+"/JoinOnBehalf", at,
		`{"IdentityStoreID":2,"joiningUserIdentity":"`+SeedUserBobID+`","joinType":{"MembershipType":1}}`)
	if env := r.json(t); env["status"] != float64(0) {
		t.Errorf("object form = %v", env)
	}
	env := h.api(http.MethodPost, dataAPI+"/Groups/"+gid+"/JoinOnBehalf", at, `["ghost"]`).json(t)
	if env["status"] != float64(1) || env["errorCode"] != "ObjectNotFound" {
		t.Errorf("unknown user join = %v", env)
	}
	env = h.api(http.MethodPost, dataAPI+"/Groups/nogroup/JoinOnBehalf", at, `["bob"]`).json(t)
	if env["status"] != float64(1) {
		t.Errorf("unknown group join = %v", env)
	}
	wantStatus(t, h.api(http.MethodPost, dataAPI+"/Groups/"+gid+"/JoinOnBehalf", at, `[]`), http.StatusBadRequest)
}

func TestLogDownloadIsBinaryExact(t *testing.T) {
	want := LogArchive()
	if len(want) != 256<<10 {
		t.Fatalf("archive is %d bytes", len(want))
	}
	for _, b := range []byte{0x00, 0x0d, 0x0a, 0xff} {
		if bytes.IndexByte(want, b) < 0 {
			t.Errorf("archive lacks byte %#x", b)
		}
	}
	if !bytes.Contains(want, []byte("\r\n")) {
		t.Error("archive lacks CRLF")
	}
	want[0] ^= 1 // LogArchive hands out copies
	want = LogArchive()

	h := newHarness(t, testCfg())
	at, _ := h.login()
	for _, p := range []string{"/GroupIDDataService/api/Logs/Download", "/GroupIDSecurityService/api/Logs/Download"} {
		r := h.api(http.MethodGet, p, at, "")
		wantStatus(t, r, http.StatusOK)
		contentTypeIs(t, r, "application/octet-stream")
		if !bytes.Equal(r.body, want) {
			t.Errorf("%s: body differs from LogArchive (%d bytes)", p, len(r.body))
		}
		wantStatus(t, h.do(http.MethodGet, p, nil), http.StatusUnauthorized)
	}
}

func TestRoutingAndRecording(t *testing.T) {
	h := newHarness(t, testCfg())
	at, _ := h.login()
	h.sim.ResetCounters()
	skip := len(h.sim.Requests()) // the password grant

	// Unknown path: 404 without asking for a token, and recorded.
	r := h.do(http.MethodGet, "/GroupIDDataService/api/Nothing/Here?x=1", nil)
	wantStatus(t, r, http.StatusNotFound)
	wantStatus(t, h.do(http.MethodGet, "/favicon.ico", nil), http.StatusNotFound)
	// Known path, wrong verb.
	r = h.do(http.MethodPut, dataAPI+"/Users", nil)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "PATCH") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow = %q", allow)
	}
	// Other identity store: 404 after authentication.
	wantStatus(t, h.do(http.MethodGet, "/GroupIDDataService/api/IdentityStores/3/Users/"+SeedUserID, nil), http.StatusUnauthorized)
	wantStatus(t, h.api(http.MethodGet, "/GroupIDDataService/api/IdentityStores/3/Users/"+SeedUserID, at, ""), http.StatusNotFound)
	// Trailing slash tolerated.
	wantStatus(t, h.api(http.MethodGet, dataAPI+"/Users/"+SeedUserID+"/", at, ""), http.StatusOK)

	binary := []byte{0x00, 0xff, '\r', '\n', 0x80, '{'}
	h.do(http.MethodPost, dataAPI+"/Users", binary, "Authorization", "Bearer "+at, "Authorization", "Second")

	reqs := h.sim.Requests()[skip:]
	if len(reqs) != 7 {
		t.Fatalf("recorded %d requests", len(reqs))
	}
	first := reqs[0]
	if first.Path != "/GroupIDDataService/api/Nothing/Here" || first.RawQuery != "x=1" || first.Status != 404 || first.At.IsZero() {
		t.Errorf("first = %+v", first)
	}
	last := reqs[6]
	if !bytes.Equal(last.Body, binary) || len(last.Authorization) != 2 || last.Authorization[1] != "Second" || last.Status != 401 {
		t.Errorf("last = %+v", last)
	}
	c := h.sim.Counters()
	if c.APICalls[404] != 2 || c.APICalls[405] != 1 || c.APICalls[401] != 2 || c.APICalls[200] != 1 || c.TokensTotal() != 0 {
		t.Errorf("APICalls = %v (404 outside the API is not counted)", c.APICalls)
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	s := New(testCfg())
	hd := s.Handler()
	for i := 0; i < maxLog+5; i++ {
		req, _ := http.NewRequest(http.MethodGet, "/n", nil)
		hd.ServeHTTP(discardWriter{}, req)
	}
	if got := len(s.Requests()); got != maxLog {
		t.Errorf("log holds %d", got)
	}
}

// discardWriter is a minimal ResponseWriter for direct handler calls.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}
