package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/xcaddy"
)

// configName is the file findConfig looks for.
const configName = "xcaddy.json"

// findConfig returns the path of the nearest xcaddy.json in dir or one of
// its parents.
func findConfig(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, configName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s in %s or its parents; pass -config", configName, abs)
		}
	}
}

// loadBuilder decodes an xcaddy.json into an xcaddy.Builder. Unknown fields
// are errors (a misspelt key would otherwise be dropped silently), and
// local replacement paths become absolute, resolved against the file's
// directory.
func loadBuilder(path string) (xcaddy.Builder, error) {
	var b xcaddy.Builder
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, fmt.Errorf("decoding %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return b, fmt.Errorf("decoding %s: trailing data after the JSON object", path)
	}
	if b.CaddyVersion == "" {
		return b, fmt.Errorf("%s: caddy_version is required, so the build is pinned", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return b, err
	}
	base := filepath.Dir(abs)
	for i, r := range b.Replacements {
		dir, ok := localDir(string(r.New), base)
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			return b, fmt.Errorf("%s: replacement for %s: no go.mod in %s", path, r.Old, dir)
		}
		b.Replacements[i].New = xcaddy.ReplacementPath(dir)
	}
	return b, nil
}

// localDir reports whether a replacement target is a directory rather than
// a module path, by the go.mod rule (absolute, or starting with ./ or ../),
// and returns it made absolute against base.
func localDir(target, base string) (string, bool) {
	if filepath.IsAbs(target) {
		return filepath.Clean(target), true
	}
	slashed := filepath.ToSlash(target)
	if slashed == "." || slashed == ".." || strings.HasPrefix(slashed, "./") || strings.HasPrefix(slashed, "../") {
		return filepath.Join(base, target), true
	}
	return "", false
}
