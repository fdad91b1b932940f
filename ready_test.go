package groupidauth

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
	"github.com/caddy-groupid/caddy-groupid/tokencache"
)

func readyAnswer(t *testing.T, rd Ready) (int, readiness) {
	t.Helper()
	w := httptest.NewRecorder()
	if err := rd.ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil), nil); err != nil {
		t.Fatal(err)
	}
	var out readiness
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("readiness answer may be cached")
	}
	return w.Code, out
}

func TestReadyNamesAndEmptyConfig(t *testing.T) {
	if code, out := readyAnswer(t, Ready{app: new(App)}); code != 503 || out.Ready || !strings.Contains(out.Reason, "no groupid_auth credential is loaded") {
		t.Fatalf("empty config: %d %+v", code, out)
	}

	r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Name = "svc-a" })
	r.getUser()
	r.settle()
	if code, out := readyAnswer(t, Ready{Name: "svc-a", app: r.h.app}); code != 200 || !out.Ready || len(out.Credentials) != 1 || out.Credentials[0].State != tokencache.ConditionValid {
		t.Fatalf("named credential: %d %+v", code, out)
	}
	if code, out := readyAnswer(t, Ready{Name: "svc-b", app: r.h.app}); code != 503 || !strings.Contains(out.Reason, "named svc-b") {
		t.Fatalf("unknown name: %d %+v", code, out)
	}
	if code, out := readyAnswer(t, Ready{app: r.h.app}); code != 200 || out.Credentials[0].ExpiresIn <= 0 {
		t.Fatalf("all credentials: %d %+v", code, out)
	}
}
