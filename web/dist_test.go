package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// buildFiles are the files besides src/ the build is made from; keep in step
// with scripts/sourcehash.mjs.
var buildFiles = []string{"index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"}

// sourceHash is scripts/sourcehash.mjs in Go: for every file of src/ and the
// build files, in byte order of their slash-separated paths,
// "path\x00sha256(content)\n", hashed with SHA-256.
func sourceHash(root string) (string, error) {
	files := append([]string(nil), buildFiles...)
	err := filepath.WalkDir(filepath.Join(root, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		c := sha256.Sum256(b)
		fmt.Fprintf(h, "%s\x00%s\n", f, hex.EncodeToString(c[:]))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestDistMatchesSources fails when the checked-in dist/ was built from other
// sources than the ones in the tree: run `go tool task web` and check dist/ in.
func TestDistMatchesSources(t *testing.T) {
	want, err := sourceHash(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("dist", ".source-hash"))
	if err != nil {
		t.Fatalf("dist/.source-hash: %v — run `go tool task web`", err)
	}
	if strings.TrimSpace(string(got)) != want {
		t.Fatalf("web/dist is older than web/src (built from %s, sources are %s): run `go tool task web` and check dist/ in",
			strings.TrimSpace(string(got)), want)
	}
	if _, err := fs.Stat(Files(), "index.html"); err != nil {
		t.Fatalf("the embedded app has no index.html: %v", err)
	}
}

// TestClientMatchesSpec fails when a TypeScript client was generated from
// another OpenAPI document than the checked-in one: run `go tool task web`.
func TestClientMatchesSpec(t *testing.T) {
	for spec, client := range map[string]string{"openapi.json": "schema.d.ts", "cloud-openapi.json": "cloud-schema.d.ts"} {
		b, err := os.ReadFile(filepath.Join("..", "openapi", spec))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		schema, err := os.ReadFile(filepath.Join("src", "api", client))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := bytes.Cut(schema, []byte("\n"))
		want := "// " + spec + " sha256 " + hex.EncodeToString(sum[:])
		if string(first) != want {
			t.Errorf("web/src/api/%s was generated from another openapi/%s (%q, want %q): run `go tool task web`", client, spec, first, want)
		}
	}
}
