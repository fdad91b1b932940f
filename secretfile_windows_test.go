package groupidauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDriveLetterFilePlaceholder: on Windows a {file.*} placeholder takes
// a drive-letter path with backslashes ({file.C:\ProgramData\...\password}:
// Caddy ends the placeholder at the first "}" and treats "\" as an escape
// only before a brace) or with forward slashes, and a CRLF line end is
// trimmed. Runs under Wine in make test.
func TestDriveLetterFilePlaceholder(t *testing.T) {
	dir := t.TempDir()
	if len(dir) < 3 || dir[1] != ':' || dir[2] != '\\' {
		t.Fatalf("temp dir %q is not a drive-letter path", dir)
	}
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("drive-letter-secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{pw, filepath.ToSlash(pw)} {
		v := "{file." + path + "}"
		if err := expandPlaceholders([]stringField{{"password", &v}}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if v != "drive-letter-secret" {
			t.Errorf("{file.%s} expanded to %q", path, v)
		}
	}
	missing := "{file." + filepath.Join(dir, "absent") + "}"
	if err := expandPlaceholders([]stringField{{"password", &missing}}); err == nil || !strings.Contains(err.Error(), "password: evaluated placeholder {file.") {
		t.Errorf("missing file: %v", err)
	}
}
