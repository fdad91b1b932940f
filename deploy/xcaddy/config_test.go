package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalDir(t *testing.T) {
	base := filepath.FromSlash("/repo/root")
	for target, want := range map[string]string{
		".":                       "/repo/root",
		"./plugin":                "/repo/root/plugin",
		"../other":                "/repo/other",
		"/abs/dir":                "/abs/dir",
		"example.com/fork v1.2.3": "",
		"example.com/fork":        "",
	} {
		got, ok := localDir(target, base)
		if ok != (want != "") || got != filepath.FromSlash(want) {
			t.Errorf("localDir(%q) = %q, %v; want %q", target, got, ok, want)
		}
	}
}

// TestRepoConfig loads the repository's own xcaddy.json.
func TestRepoConfig(t *testing.T) {
	path, err := findConfig(".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBuilder(path)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(path)
	if len(b.Replacements) != 1 || string(b.Replacements[0].New) != root {
		t.Errorf("replacements %v, want the plugin replaced by %s", b.Replacements, root)
	}
	if len(b.Plugins) != 1 || b.Plugins[0].Version == "" {
		t.Errorf("plugins %v, want the plugin at an explicit version", b.Plugins)
	}
}

func TestLoadBuilderErrors(t *testing.T) {
	for name, tc := range map[string]struct{ json, want string }{
		"typo":        {`{"caddy_version":"v2.11.9","plugin":[]}`, `unknown field "plugin"`},
		"unpinned":    {`{"plugins":[{"module_path":"example.com/p"}]}`, "caddy_version is required"},
		"trailing":    {`{"caddy_version":"v2.11.9"} {}`, "trailing data"},
		"no go.mod":   {`{"caddy_version":"v2.11.9","replacements":[{"old":"example.com/p","new":"./missing"}]}`, "no go.mod"},
		"not an obj":  {`[]`, "cannot unmarshal"},
		"empty input": {``, "EOF"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "xcaddy.json")
			if err := os.WriteFile(path, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := loadBuilder(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
