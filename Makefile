# caddy-groupid: the two commands a newcomer needs are `make demo` and `make test`.
GO ?= go
BIN := bin

.PHONY: all build test test-deps vet demo bench xcaddy clean

all: build

build:
	$(GO) build -o $(BIN)/caddy ./cmd/caddy
	$(GO) build -o $(BIN)/groupid-sim ./cmd/groupid-sim

# vet: formatting and go vet.
vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# test: vet, staticcheck (pinned), the whole suite under the race detector
# (fuzz seed corpora replayed; benchmarks compiled, not run), and checks of
# the built binary and Caddyfile.example. deploy/monitoring runs promtool and
# a real Prometheus (Debian's prometheus package; .ci/run installs it).
# test-deps: curl, promtool and prometheus, installed with apt-get when
# missing (see scripts/test-deps.sh).
test-deps:
	bash scripts/test-deps.sh

test: test-deps vet build
	bash scripts/staticcheck.sh
	$(GO) test -race -count=1 -run . -bench XXX_compile_only ./...
	for m in http.handlers.groupid_auth http.handlers.groupid_ready http.reverse_proxy.transport.groupid groupid; do \
		$(BIN)/caddy list-modules | grep -qx "$$m" || { echo "bin/caddy lacks $$m"; exit 1; }; \
	done
	$(BIN)/caddy fmt Caddyfile.example | diff -u Caddyfile.example -
	@echo "make test: all checks passed"

# demo: the sidecar from Caddyfile.example in front of the GroupID simulator,
# with scripted legacy calls. DEMO_EXIT=1 exits after them.
demo:
	bash scripts/demo.sh

# bench: Go micro-benchmarks (hot path, token read under -cpu 1,2), then the
# load benchmark (A: groupid_auth, B: static header_up, C: direct), token
# economy, cold start and memory. Writes bench/results.md and its SVG plots in
# bench/plots/. Not part of test.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1,2 -count 5 . ./tokencache
	$(GO) run ./bench/loadbench -md bench/results.md

# xcaddy: build Caddy from xcaddy.json with xcaddy's library and check the
# result lists the plugin (bin/caddy-xcaddy).
xcaddy:
	bash deploy/xcaddy/build.sh

clean:
	rm -rf $(BIN) .demo
