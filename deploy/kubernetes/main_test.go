// Package kubernetes_test checks the manifests in deploy/kubernetes against
// each other and against the Caddyfile they ship: they parse, the sidecar is
// hardened and probed, the Secret lands where the Caddyfile reads it, and
// the config adapts and validates with the Deployment's environment.
package kubernetes_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
	"gopkg.in/yaml.v3"
)

func TestMain(m *testing.M) { testenv.RunHermetic(m) }

const sidecarName = "groupid-sidecar"

// decodeAll decodes every YAML document of a manifest file into nodes.
func decodeAll(t *testing.T, name string) []*yaml.Node {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs = append(docs, &n)
	}
}

// load decodes the single object of kind in a manifest file into v.
func load(t *testing.T, name, kind string, v any) {
	t.Helper()
	docs := decodeAll(t, name)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", name, len(docs))
	}
	var obj meta
	if err := docs[0].Decode(&obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if obj.Kind != kind {
		t.Fatalf("%s: kind %q, want %q", name, obj.Kind, kind)
	}
	if err := docs[0].Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// loadDeployment returns the Deployment and its sidecar container.
func loadDeployment(t *testing.T) (deployment, container) {
	t.Helper()
	var d deployment
	load(t, "deployment.yaml", "Deployment", &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == sidecarName {
			return d, c
		}
	}
	t.Fatalf("deployment.yaml: no container named %s", sidecarName)
	return d, container{}
}

// env returns the literal environment of a container (valueFrom entries
// are left out: they are not settings of the Caddyfile).
func (c container) env() map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

// source names the volume source a file path inside a container comes from.
type source struct {
	volume volume
	key    string // the Secret or ConfigMap key, if any
}

// resolve finds the volume and key behind an absolute path in container c.
func (p podSpec) resolve(c container, path string) (source, bool) {
	var best *volumeMount
	for i, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if best == nil || len(m.MountPath) > len(best.MountPath) {
				best = &c.VolumeMounts[i]
			}
		}
	}
	if best == nil {
		return source{}, false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, best.MountPath), "/")
	if best.SubPath != "" {
		rel = filepath.ToSlash(filepath.Join(best.SubPath, rel))
	}
	for _, v := range p.Volumes {
		if v.Name != best.Name {
			continue
		}
		var items []keyToPath
		switch {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		default:
			return source{volume: v}, true
		}
		if len(items) == 0 {
			return source{volume: v, key: rel}, true
		}
		for _, it := range items {
			if it.Path == rel {
				return source{volume: v, key: it.Key}, true
			}
		}
		return source{volume: v}, true
	}
	return source{}, false
}
