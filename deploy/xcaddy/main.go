// Command xcaddy-build builds Caddy with plugins from a declarative
// xcaddy.json: the JSON form of xcaddy's own Builder type, so the file
// carries exactly what `xcaddy build --with ...` would, pinned and reviewable.
//
// Usage, from this directory:
//
//	go run . -config ../../xcaddy.json -o ../../bin/caddy-xcaddy
//
// Without -config the nearest xcaddy.json in the working directory or one
// of its parents is used; without -o the binary goes to bin/caddy-xcaddy
// next to that file. Relative local replacement paths in the file are
// resolved against the file's directory, because xcaddy builds in a
// temporary directory of its own.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	log.SetFlags(0)
	configPath := flag.String("config", "", "path to xcaddy.json (default: nearest xcaddy.json in . or a parent)")
	output := flag.String("o", "", "output binary (default: bin/caddy-xcaddy next to xcaddy.json)")
	flag.Parse()
	if flag.NArg() != 0 {
		log.Fatalf("xcaddy-build: unexpected arguments %q", flag.Args())
	}
	if err := run(*configPath, *output); err != nil {
		log.Fatalf("xcaddy-build: %v", err)
	}
}

func run(configPath, output string) error {
	if configPath == "" {
		found, err := findConfig(".")
		if err != nil {
			return err
		}
		configPath = found
	}
	builder, err := loadBuilder(configPath)
	if err != nil {
		return err
	}
	if output == "" {
		abs, err := filepath.Abs(configPath)
		if err != nil {
			return err
		}
		output = filepath.Join(filepath.Dir(abs), "bin", "caddy-xcaddy")
	}
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := builder.Build(ctx, output); err != nil {
		return fmt.Errorf("building %s: %w", output, err)
	}
	return nil
}
