// Command caddy is Caddy with its standard modules plus groupid_auth.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-groupid/caddy-groupid"
)

func main() {
	caddycmd.Main()
}
