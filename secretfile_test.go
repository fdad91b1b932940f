package groupidauth

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

// replaceFile writes data to path the way a tool replaces a secret file.
type replaceFile func(t *testing.T, path string, data []byte)

// secretReplacements are the ways secret files are replaced in the field.
// Windows cannot replace an open file the Unix way, so its tools delete
// and create it, or write a new file and rename it over the old one
// (MoveFileEx with MOVEFILE_REPLACE_EXISTING, which os.Rename uses);
// Kubernetes swaps a symlinked directory, which to a reader is a rename.
var secretReplacements = []struct {
	name    string
	replace replaceFile
}{
	{"edit in place", func(t *testing.T, path string, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"delete and create", func(t *testing.T, path string, data []byte) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("after delete: %v", err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"rename over", func(t *testing.T, path string, data []byte) {
		tmp := filepath.Join(filepath.Dir(path), ".password.new")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}},
}

// passwordGrant is one password grant the simulator received.
type passwordGrant struct {
	password string
	status   int
}

// passwordGrants lists the password grants among the simulator's token
// requests from the from-th on.
func passwordGrants(sim *groupidsim.Server, from int) []passwordGrant {
	var out []passwordGrant
	for _, req := range sim.TokenRequests()[from:] {
		form, err := url.ParseQuery(string(req.Body))
		if err != nil || form.Get("grant_type") != "password" {
			continue
		}
		out = append(out, passwordGrant{form.Get("password"), req.Status})
	}
	return out
}

// TestReplacedSecretFileUsedOnceAfterRejection: the password comes from a
// {file.*} placeholder (on Windows a drive-letter path such as
// C:\Users\...\password); GroupID's password changes and the file is
// replaced (in place, deleted and created, or renamed over, with a CRLF
// line end as Notepad writes it). The next password grant sends the old
// password once, is rejected, reads the file again and sends the new
// password exactly once; the token chain then continues on refresh tokens
// and clients never see a failure.
func TestReplacedSecretFileUsedOnceAfterRejection(t *testing.T) {
	for _, tc := range secretReplacements {
		t.Run(tc.name, func(t *testing.T) {
			pwFile := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(pwFile, []byte(groupidsim.DefaultPassword+"\r\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, groupidsim.Config{}, func(r *rig) { r.h.Password = "{file." + pwFile + "}" })
			if st, _ := r.getUser(); st != http.StatusOK {
				t.Fatalf("warm: %d", st)
			}
			r.settle()
			if got := passwordGrants(r.sim, 0); len(got) != 1 || got[0].password != groupidsim.DefaultPassword {
				t.Fatalf("first grant: %+v (a CRLF line end must be trimmed)", got)
			}

			const rotated = "rotated-Passw0rd!"
			r.sim.SetPassword(rotated)
			tc.replace(t, pwFile, []byte(rotated+"\r\n"))
			// Only a password grant can be rejected for a wrong password:
			// make the held refresh token useless so the next refresh falls
			// back to one.
			r.sim.InvalidateRefreshTokens()
			from := len(r.sim.TokenRequests())

			// Two token lifetimes: the fallback, then a refresh on the new chain.
			for end := r.clk.Now().Add(2 * groupidsim.DefaultTokenLifetime); r.clk.Now().Before(end); {
				r.advance(10*time.Second, 10*time.Second)
				if st, _ := r.getUser(); st != http.StatusOK {
					t.Fatalf("at %v: status %d", r.elapsed(), st)
				}
			}
			got := passwordGrants(r.sim, from)
			want := []passwordGrant{{groupidsim.DefaultPassword, http.StatusBadRequest}, {rotated, http.StatusOK}}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("password grants after the replacement: %+v, want %+v (old value rejected once, new value used once)", got, want)
			}
			if n := r.sim.Counters().Tokens("refresh_token"); n < 2 {
				t.Errorf("%d refresh grants: the new chain did not continue on refresh tokens", n)
			}
		})
	}
}
