// Phase 5: A and B under JSON POST bodies (16 KiB by default), in
// interleaved rounds like phase 1. Config A's groupid_auth buffers a body
// of this size for a possible replay after a 401; B has no such step.

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddy-groupid/caddy-groupid/groupidsim"
)

type postResult struct {
	Size int    // bytes of each request body
	Path string // where the bodies go
	Runs []tpRun
}

func (b *bench) runPost() error {
	o := b.o
	if o.postSize <= 0 {
		return nil
	}
	_, run, caFile, err := b.newSim(groupidsim.Config{})
	if err != nil {
		return err
	}
	script := filepath.Join(b.dir, "post.lua")
	if err := os.WriteFile(script, wrkPostScript(postBody(o.postSize)), 0o600); err != nil {
		return err
	}
	pr := &postResult{Size: o.postSize, Path: postPath}
	b.post = pr
	slice := o.duration / time.Duration(o.slices)
	b.commands = append(b.commands,
		"wrk "+strings.Join(wrkArgs(o.threads, o.conns, slice, "http://127.0.0.1:<port>"+postPath, "", "-s", "<workdir>/post.lua"), " ")+
			fmt.Sprintf("   (POST phase, A and B: %d-byte JSON bodies; warm-up %s with the same script; %d slices each per round, interleaved)",
				o.postSize, o.warmup, o.slices))
	logf("POST bodies: %d-byte JSON to %s, %d rounds of A and B", o.postSize, postPath, o.rounds)
	for r := 1; r <= o.rounds; r++ {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		runs, err := b.abRound(r, run, caFile, abLoad{tag: "post", log: "POST ", path: postPath, extra: []string{"-s", script}})
		if err != nil {
			return err
		}
		pr.Runs = append(pr.Runs, runs...)
	}
	return nil
}

// postBody is a JSON document of exactly n bytes (n >= 256): a new user
// with a list of group memberships, padded by a notes field.
func postBody(n int) []byte {
	const tail = `],"notes":""}`
	var b bytes.Buffer
	b.WriteString(`{"identityStoreId":2,"samAccountName":"bench.user","displayName":"Bench User",` +
		`"mail":"bench.user@example.test","department":"Engineering","enabled":true,"memberOf":[`)
	for i := 0; ; i++ {
		m := fmt.Sprintf(`{"groupName":"group-%05d","objectGuid":"00000000-0000-4000-8000-%012d"}`, i, i)
		if i > 0 {
			m = "," + m
		}
		if b.Len()+len(m)+len(tail) > n {
			break
		}
		b.WriteString(m)
	}
	b.WriteString(`],"notes":"`)
	b.WriteString(strings.Repeat("x", max(0, n-b.Len()-2)))
	b.WriteString(`"}`)
	return b.Bytes()
}

// wrkPostScript is a wrk Lua script that makes every request a POST of
// body as application/json. The body goes in a level-2 long bracket, which
// JSON from postBody cannot close early.
func wrkPostScript(body []byte) []byte {
	return []byte("-- loadbench POST phase: the same JSON body on every request\n" +
		"wrk.method = \"POST\"\n" +
		"wrk.headers[\"Content-Type\"] = \"application/json\"\n" +
		"wrk.body = [==[" + string(body) + "]==]\n")
}

func (b *bench) reportPost(w *strings.Builder) []verdict {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	o, pr := b.o, b.post
	size := fmt.Sprintf("%d-byte", pr.Size)
	if pr.Size%1024 == 0 {
		size = fmt.Sprintf("%d KiB", pr.Size/1024)
	}
	p("## 5. %s JSON POST bodies (wrk)\n\n", size)
	p("As section 1 without C: %d rounds, a fresh Caddy process for A and for B each round, warmed up for %s, then %d "+
		"interleaved wrk runs of %s each. Every request, warm-up included, is a POST of the same %d-byte JSON document "+
		"(`Content-Type: application/json`) to `%s`, set by a wrk Lua script (`-s`). Config A's groupid_auth keeps a "+
		"body up to `max_replay_body` (1 MiB by default) in memory so that it can replay the request after a 401; B "+
		"forwards it as it comes.\n\n", o.rounds, o.warmup, o.slices, o.duration/time.Duration(o.slices), pr.Size, pr.Path)
	s := b.reportRounds(w, pr.Runs)
	// Every body read to the end must be whole, or the row measures less
	// work. Requests in flight when a wrk run stops lose their body on the
	// way; they are counted apart.
	var reqs, cut, bytes int64
	for _, r := range pr.Runs {
		reqs += r.Up.requests()
		cut += r.Up.Cut
		bytes += r.Up.BodyBytes
	}
	whole := reqs > cut && bytes == (reqs-cut)*int64(pr.Size)
	perReq := 0.0
	if reqs > cut {
		perReq = float64(bytes) / float64(reqs-cut)
	}
	p("The upstream read %.0f body bytes per request on average over the %d requests whose body it read to the end; "+
		"%d more broke off when a wrk run stopped.\n\n", perReq, reqs-cut, cut)
	var out []verdict
	if len(s.cpu.all) > 0 {
		out = append(out, verdict{fmt.Sprintf("POST %s JSON: Caddy CPU per request A/B <= %.2f (median of rounds)", size, postCPUTarget),
			s.cpu.String(), s.cpu.med <= postCPUTarget})
	}
	out = append(out, verdict{"POST runs: no non-2xx, socket errors or wrong tokens; every body the upstream read to the end was whole",
		fmt.Sprintf("%d; %.0f bytes per request", s.bad, perReq), s.bad == 0 && whole})
	return out
}
