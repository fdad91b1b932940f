package kubernetes_test

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestManifestsParse decodes every document of every YAML file here.
func TestManifestsParse(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	for _, f := range files {
		for i, doc := range decodeAll(t, f) {
			var m meta
			if err := doc.Decode(&m); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if m.APIVersion == "" || m.Kind == "" {
				t.Errorf("%s document %d: apiVersion and kind are required", f, i)
			}
			if m.Kind != "Kustomization" && m.Metadata.Name == "" {
				t.Errorf("%s document %d: metadata.name is required", f, i)
			}
		}
	}

	var k kustomization
	load(t, "kustomization.yaml", "Kustomization", &k)
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	_, side := loadDeployment(t)
	if len(k.Images) != 1 || !strings.HasPrefix(side.Image, k.Images[0].Name+":") {
		t.Errorf("kustomization.yaml images do not name the sidecar image %q", side.Image)
	}
}

// TestDeploymentShape checks the two containers, the probes, the resources
// and the non-root, read-only setup.
func TestDeploymentShape(t *testing.T) {
	d, side := loadDeployment(t)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 2 {
		t.Fatalf("%d containers, want the legacy app and the sidecar", len(pod.Containers))
	}
	if rn := pod.SecurityContext.RunAsNonRoot; rn == nil || !*rn {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if u := pod.SecurityContext.RunAsUser; u == nil || *u == 0 {
		t.Error("pod securityContext.runAsUser must be a non-zero UID (the busybox image has none)")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
	}

	for _, p := range []struct {
		name string
		pr   *probe
		path string
	}{{"readinessProbe", side.ReadinessProbe, "/ready"}, {"livenessProbe", side.LivenessProbe, "/live"}} {
		if p.pr == nil || p.pr.HTTPGet == nil {
			t.Errorf("sidecar: no httpGet %s", p.name)
			continue
		}
		if p.pr.HTTPGet.Path != p.path {
			t.Errorf("sidecar %s path %q, want %q", p.name, p.pr.HTTPGet.Path, p.path)
		}
		if got, want := probePort(side, p.pr), side.env()["HEALTH_PORT"]; got != want {
			t.Errorf("sidecar %s port %q, want HEALTH_PORT %q", p.name, got, want)
		}
	}

	for _, kind := range []string{"cpu", "memory"} {
		if side.Resources.Requests[kind] == "" || side.Resources.Limits[kind] == "" {
			t.Errorf("sidecar: %s request and limit are required", kind)
		}
	}

	// Caddy writes only below XDG_DATA_HOME and XDG_CONFIG_HOME, and its
	// admin socket: all must be on an emptyDir of the sidecar's own.
	env := side.env()
	admin, ok := strings.CutPrefix(env["CADDY_ADMIN"], "unix/")
	if !ok {
		t.Errorf("CADDY_ADMIN %q is not a Unix socket: the legacy app could reconfigure Caddy", env["CADDY_ADMIN"])
	}
	// Caddy's "path|mode" form; without a mode Caddy uses 0200.
	admin, mode, hasMode := strings.Cut(admin, "|")
	if m, err := strconv.ParseUint(mode, 8, 32); hasMode && (err != nil || m&0o077 != 0) {
		t.Errorf("CADDY_ADMIN %q: the socket must be usable by its owner only", env["CADDY_ADMIN"])
	}
	for _, p := range []string{env["XDG_DATA_HOME"], env["XDG_CONFIG_HOME"], admin} {
		src, ok := pod.resolve(side, p)
		if p == "" || !ok || src.volume.EmptyDir == nil {
			t.Errorf("sidecar: %q is not on an emptyDir volume", p)
		}
	}
}

// probePort returns a probe's port as a number, resolving a port name.
func probePort(c container, p *probe) string {
	port := p.HTTPGet.Port
	for _, cp := range c.Ports {
		if cp.Name == port {
			return strconv.Itoa(cp.ContainerPort)
		}
	}
	return port
}
