package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-groupid/caddy-groupid"
	"github.com/caddy-groupid/caddy-groupid/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite configmap.yaml from Caddyfile.example")

const caddyfileExample = "../../Caddyfile.example"

// caddyfileKey is the ConfigMap key, and the file name under /etc/caddy.
const caddyfileKey = "Caddyfile"

// TestConfigMapMatchesCaddyfileExample keeps the shipped ConfigMap a
// verbatim copy of Caddyfile.example; -update rewrites it.
func TestConfigMapMatchesCaddyfileExample(t *testing.T) {
	want, err := os.ReadFile(caddyfileExample)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeConfigMap(t, want)
	}
	if got := sidecarCaddyfile(t); got != string(want) {
		t.Fatal("configmap.yaml differs from Caddyfile.example; run: go test ./deploy/kubernetes -run TestConfigMapMatchesCaddyfileExample -update")
	}
}

// writeConfigMap replaces the block scalar after "  Caddyfile: |" (the
// last key of configmap.yaml) with src, keeping the header as written.
func writeConfigMap(t *testing.T, src []byte) {
	old, err := os.ReadFile("configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	marker := "\n  " + caddyfileKey + ": |\n"
	head, _, ok := bytes.Cut(old, []byte(marker))
	if !ok {
		t.Fatalf("configmap.yaml has no %q line", strings.TrimSpace(marker))
	}
	out := append(head, marker...)
	for line := range strings.Lines(string(src)) {
		if strings.TrimSpace(line) != "" {
			out = append(out, "    "...)
		}
		out = append(out, line...)
	}
	if err := os.WriteFile("configmap.yaml", out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sidecarCaddyfile returns the Caddyfile the ConfigMap ships, after
// checking that the Deployment mounts it where the image's entrypoint
// reads it.
func sidecarCaddyfile(t *testing.T) string {
	t.Helper()
	var cm configMap
	load(t, "configmap.yaml", "ConfigMap", &cm)
	d, side := loadDeployment(t)
	src, ok := d.Spec.Template.Spec.resolve(side, "/etc/caddy/"+caddyfileKey)
	if !ok || src.volume.ConfigMap == nil || src.volume.ConfigMap.Name != cm.Metadata.Name || src.key != caddyfileKey {
		t.Fatalf("/etc/caddy/%s in the sidecar is not key %s of ConfigMap %s", caddyfileKey, caddyfileKey, cm.Metadata.Name)
	}
	text, ok := cm.Data[caddyfileKey]
	if !ok {
		t.Fatalf("configmap.yaml has no %s key", caddyfileKey)
	}
	return text
}

// adapt sets env for the test and adapts the ConfigMap's Caddyfile.
func adapt(t *testing.T, env map[string]string) []byte {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(sidecarCaddyfile(t)), map[string]any{"filename": caddyfileKey})
	if err != nil {
		t.Fatalf("adapting the ConfigMap's Caddyfile: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.Message)
	}
	return out
}

var filePlaceholder = regexp.MustCompile(`\{file\.([^}]+)\}`)

// TestSecretsMountedWhereCaddyfileReads adapts the Caddyfile with the
// Deployment's environment and follows every {file.*} it reads to the
// Secret, and GROUPID_CA_FILE to its volume.
func TestSecretsMountedWhereCaddyfileReads(t *testing.T) {
	var sec secret
	load(t, "secret.yaml", "Secret", &sec)
	d, side := loadDeployment(t)
	pod := d.Spec.Template.Spec
	cfg := adapt(t, side.env())

	var read []string
	for _, m := range filePlaceholder.FindAllSubmatch(cfg, -1) {
		path := string(m[1])
		src, ok := pod.resolve(side, path)
		if !ok || src.volume.Secret == nil || src.volume.Secret.SecretName != sec.Metadata.Name {
			t.Errorf("%s is not mounted from Secret %s", path, sec.Metadata.Name)
			continue
		}
		_, inData := sec.Data[src.key]
		_, inString := sec.StringData[src.key]
		if !inData && !inString {
			t.Errorf("%s is key %q, which Secret %s does not have", path, src.key, sec.Metadata.Name)
		}
		if mode := src.volume.Secret.DefaultMode; mode != nil && *mode&0o004 == 0 && (*mode&0o040 == 0 || pod.SecurityContext.FSGroup == nil) {
			t.Errorf("%s: mode %#o is unreadable by the non-root sidecar without fsGroup", path, *mode)
		}
		read = append(read, src.key)
	}
	slices.Sort(read)
	if want := []string{"client_secret", "password"}; !slices.Equal(slices.Compact(read), want) {
		t.Errorf("the Caddyfile reads Secret keys %v, want %v", read, want)
	}

	ca := side.env()["GROUPID_CA_FILE"]
	if src, ok := pod.resolve(side, ca); !ok || src.key == "" {
		t.Errorf("GROUPID_CA_FILE %q is not a key of a mounted ConfigMap or Secret", ca)
	}

	// The legacy app gets neither the credentials nor the admin socket.
	for _, c := range pod.Containers {
		if c.Name == sidecarName {
			continue
		}
		for _, m := range c.VolumeMounts {
			for _, sm := range side.VolumeMounts {
				if m.Name == sm.Name {
					t.Errorf("container %s mounts the sidecar's volume %s", c.Name, m.Name)
				}
			}
		}
	}
}

// TestSidecarConfigValidates runs `caddy validate` in-process on the
// ConfigMap's Caddyfile with the Deployment's environment, the secret and
// CA paths pointed at temporary files.
func TestSidecarConfigValidates(t *testing.T) {
	_, side := loadDeployment(t)
	env := side.env()
	for k, v := range deploymentTestFiles(t) {
		if _, ok := env[k]; !ok {
			t.Fatalf("deployment.yaml does not set %s", k)
		}
		env[k] = v
	}
	var cfg caddy.Config
	if err := json.Unmarshal(adapt(t, env), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy validate: %v", err)
	}
}

// deploymentTestFiles writes the secret files and a CA certificate to a
// temporary directory and returns the variables that point the Caddyfile
// (and Caddy's own storage) at them.
func deploymentTestFiles(t *testing.T) map[string]string {
	t.Helper()
	dir, caFile := testenv.SecretFiles(t)
	return map[string]string{
		"GROUPID_SECRETS_DIR": dir,
		"GROUPID_CA_FILE":     caFile,
		"XDG_DATA_HOME":       filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME":     filepath.Join(dir, "config"),
	}
}
