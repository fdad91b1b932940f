# caddy-groupid: the two commands a newcomer needs are `make demo` and `make test`.
GO ?= go
BIN := bin

.PHONY: all build test test-deps vet cross wine demo bench xcaddy clean

all: build

build:
	$(GO) build -o $(BIN)/caddy ./cmd/caddy
	$(GO) build -o $(BIN)/groupid-sim ./cmd/groupid-sim

# vet: formatting and go vet.
vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# cross: go vet and the Caddy binary for each of CROSS, and the windows/amd64
# test binaries of tokencache and the root package (for wine), in bin/cross.
CROSS := windows/amd64 linux/arm64 darwin/arm64
cross:
	@mkdir -p $(BIN)/cross
	set -e; for p in $(CROSS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "cross: $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch $(GO) vet ./...; \
		GOOS=$$os GOARCH=$$arch $(GO) build -o $(BIN)/cross/caddy-$$os-$$arch$$ext ./cmd/caddy; \
	done
	GOOS=windows GOARCH=amd64 $(GO) test -c -o $(BIN)/cross/tokencache.test.exe ./tokencache
	GOOS=windows GOARCH=amd64 $(GO) test -c -ldflags=-checklinkname=0 -o $(BIN)/cross/groupidauth.test.exe .

# wine: the windows/amd64 tests of tokencache and the root package under
# Wine (scripts/wine-test.sh says what it needs and works around).
wine: cross
	bash scripts/wine-test.sh

# test: vet, staticcheck (pinned), the whole suite under the race detector
# (fuzz seed corpora replayed; benchmarks compiled, not run), checks of the
# built binary and Caddyfile.example, then the cross builds and the Wine run.
# deploy/monitoring runs promtool and a real Prometheus (Debian's prometheus
# package); the Wine run needs wine64 and mingw binutils: test-deps installs
# them with apt-get when missing (see scripts/test-deps.sh).
test-deps:
	bash scripts/test-deps.sh

test: test-deps vet build
	bash scripts/staticcheck.sh
	$(GO) test -race -count=1 -run . -bench XXX_compile_only ./...
	for m in http.handlers.groupid_auth http.handlers.groupid_ready http.reverse_proxy.transport.groupid groupid; do \
		$(BIN)/caddy list-modules | grep -qx "$$m" || { echo "bin/caddy lacks $$m"; exit 1; }; \
	done
	$(BIN)/caddy fmt Caddyfile.example | diff -u Caddyfile.example -
	$(BIN)/caddy fmt deploy/windows/Caddyfile | diff -u deploy/windows/Caddyfile -
	$(MAKE) wine
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
