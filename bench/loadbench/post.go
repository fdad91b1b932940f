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
