package groupidsim

import "testing"

// A token is for the identity store its password grant named: another
// served store's path answers 401 and is counted; a store not served is
// 404; a refreshed token keeps its store.
func TestTokensAreBoundToTheirIdentityStore(t *testing.T) {
	cfg := testCfg()
	cfg.ExtraIdentityStores = []string{"3"}
	h := newHarness(t, cfg)
	form := passwordForm()
	form.Set("identity_store_id", "3")
	r := h.token(form)
	wantStatus(t, r, 200)
	m := r.json(t)
	tok3, rt3 := m["access_token"].(string), m["refresh_token"].(string)
	tok2, _ := h.login()

	wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/3/Users/"+SeedUserID, tok3, ""), 200)
	wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, tok2, ""), 200)
	wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, tok3, ""), 401)
	wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/3/Groups/x", tok2, ""), 401)
	wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/4/Users/"+SeedUserID, tok3, ""), 404)
	if rt3 != "" {
		r = h.token(refreshForm(rt3))
		wantStatus(t, r, 200)
		fresh := r.json(t)["access_token"].(string)
		wantStatus(t, h.api("GET", dataAPI+"/Users/"+SeedUserID, fresh, ""), 401)
		wantStatus(t, h.api("GET", "/GroupIDDataService/api/IdentityStores/3/Users/"+SeedUserID, fresh, ""), 200)
	}
	c := h.sim.Counters()
	if c.WrongStoreTotal() < 2 || c.WrongStoreTokens["2"] < 1 || c.PasswordGrantsByStore["3"] != 1 || c.PasswordGrantsByStore["2"] != 1 {
		t.Fatalf("counters: wrong store %v, grants by store %v", c.WrongStoreTokens, c.PasswordGrantsByStore)
	}
	form.Set("identity_store_id", "9")
	wantStatus(t, h.token(form), 400)
}
