package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerInstruction is one instruction of the Dockerfile, continuation
// lines joined.
type dockerInstruction struct {
	Cmd, Args string
}

func loadDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	var out []dockerInstruction
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfileBuildsTheStaticBinaryIntoADistrolessNonRootImage(t *testing.T) {
	ins := loadDockerfile(t)
	var froms []string
	var builds []string
	final := map[string][]string{} // instructions of the last stage
	for _, in := range ins {
		if in.Cmd == "FROM" {
			froms = append(froms, in.Args)
			final = map[string][]string{}
			continue
		}
		final[in.Cmd] = append(final[in.Cmd], in.Args)
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			builds = append(builds, in.Args)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("stages %v, want a builder and the final image", froms)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, "go.mod"))
	if !strings.HasPrefix(froms[0], "golang:"+string(goVersion[1])) {
		t.Errorf("builder %q, want golang:%s (go.mod's version)", froms[0], goVersion[1])
	}
	if !strings.HasPrefix(froms[1], "gcr.io/distroless/static") || !strings.Contains(froms[1], "nonroot") {
		t.Errorf("final image %q, want gcr.io/distroless/static…:nonroot", froms[1])
	}
	if len(builds) != 1 {
		t.Fatalf("want one go build, got %q", builds)
	}
	b := builds[0]
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath"} {
		if !strings.Contains(b, want) {
			t.Errorf("go build lacks %s: %s", want, b)
		}
	}
	// The package built must be the command `go build ./cmd/orderflow` builds.
	fields := strings.Fields(b)
	pkg := fields[len(fields)-1]
	out, err := exec.Command("go", "list", "-f", "{{.Name}} {{.ImportPath}}", filepath.Join(root, pkg)).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	if got := strings.TrimSpace(string(out)); got != "main github.com/orderflow/orderflow/cmd/orderflow" {
		t.Errorf("the Dockerfile builds %s (%s), want the orderflow command ./cmd/orderflow", pkg, got)
	}
	if _, ok := final["HEALTHCHECK"]; ok {
		t.Error("the image must not have a HEALTHCHECK: orchestrators probe /health and /ready")
	}
	if u := final["USER"]; len(u) != 1 || (u[0] != "65532:65532" && u[0] != "nonroot:nonroot" && u[0] != "nonroot") {
		t.Errorf("USER %v, want the distroless nonroot user", u)
	}
	var entry []string
	if e := final["ENTRYPOINT"]; len(e) == 1 {
		_ = json.Unmarshal([]byte(e[0]), &entry)
	}
	if !slices.Equal(entry, []string{"/orderflow"}) {
		t.Errorf("ENTRYPOINT %v, want [\"/orderflow\"] so that the command picks api, processor, init", final["ENTRYPOINT"])
	}
	var cmd []string
	if c := final["CMD"]; len(c) == 1 {
		_ = json.Unmarshal([]byte(c[0]), &cmd)
	}
	if cmds := subcommands(t); len(cmd) != 1 || !cmds[cmd[0]] {
		t.Errorf("CMD %v, want one orderflow command", cmd)
	}
	if e := strings.Join(final["EXPOSE"], " "); !strings.Contains(e, "8000") || !strings.Contains(e, "9090") {
		t.Errorf("EXPOSE %q, want 8000 and 9090", e)
	}
}

// dockerignore returns the patterns of .dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	var pats []string
	for _, line := range strings.Split(string(readFile(t, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: this test does not model exceptions", line)
		}
		pats = append(pats, strings.TrimPrefix(line, "/"))
	}
	return pats
}

// ignored reports whether Docker leaves rel (slash-separated, from the
// context root) out of the build context: a pattern matches the path or
// one of its parent directories; "**/" matches any number of directories.
func ignored(pats []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for _, p := range pats {
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := path.Match(p, prefix); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				for j := 0; j < i; j++ {
					if ok, _ := path.Match(rest, strings.Join(parts[j:i], "/")); ok {
						return true
					}
				}
			}
		}
	}
	return false
}

func TestDockerignoreMatcher(t *testing.T) {
	pats := []string{".git", "deploy", "**/*.db", "orderflow"}
	for _, c := range []struct {
		path string
		want bool
	}{
		{".git/config", true},
		{"deploy/compose/compose.yaml", true},
		{"sqlite/x.db", true},
		{"x.db", true},
		{"orderflow", true},
		{"cmd/orderflow/main.go", false},
		{"go.mod", false},
	} {
		if got := ignored(pats, c.path); got != c.want {
			t.Errorf("ignored(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

// Every file `go build ./cmd/orderflow` reads from the module (Go files
// and go:embed files) is in the build context.
func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	pats := dockerignore(t)
	for _, f := range []string{"go.mod", "go.sum"} {
		if ignored(pats, f) {
			t.Errorf(".dockerignore leaves out %s", f)
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		filepath.Join(root, "cmd/orderflow")).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, f)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ignored(pats, filepath.ToSlash(rel)) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", rel)
		}
	}
	if n < 20 {
		t.Fatalf("go list found %d files of the module in the build, want them all", n)
	}
	for _, f := range []string{".git/HEAD", "deploy/compose/compose.yaml", "artifacts/coverage.out", "orderflow.db"} {
		if !ignored(pats, f) {
			t.Errorf(".dockerignore should leave out %s", f)
		}
	}
}
