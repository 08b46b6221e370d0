package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The values the build test stamps, as `docker build --build-arg` would.
const (
	testVersion = "v9.8.7-test"
	testCommit  = "0123abc"
)

var (
	buildOnce sync.Once
	built     struct {
		bin, ctxDir string
		err         error
	}
	// buildRoot holds the context copy and the binary; TestMain removes it.
	buildRoot string
)

// buildNsguard builds nsguard the way the Dockerfile does, once per test
// run: the build context is the repository filtered by .dockerignore (with
// Docker's own matcher), and the command is the Dockerfile's `go build` RUN
// line itself, run by sh with VERSION and COMMIT set as the build args
// would set them. Only the output path is moved into a temp dir.
func buildNsguard(t *testing.T) (bin, ctxDir string) {
	t.Helper()
	buildOnce.Do(func() {
		built.bin, built.ctxDir, built.err = dockerfileBuild()
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin, built.ctxDir
}

func dockerfileBuild() (bin, ctxDir string, err error) {
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		return "", "", err
	}
	_, stages, err := parseDockerfile(string(src))
	if err != nil {
		return "", "", fmt.Errorf("Dockerfile: %w", err)
	}
	_, cmd, ok := goBuildRun(stages[0])
	if !ok {
		return "", "", fmt.Errorf("Dockerfile: no go build RUN line in the builder stage")
	}
	// TestMain's temp root, not t.TempDir: the binary outlives the test
	// that built it.
	root, err := os.MkdirTemp("", "nsguard-build")
	if err != nil {
		return "", "", err
	}
	buildRoot = root
	ctxDir = filepath.Join(root, "src")
	if err := copyContext("..", ctxDir); err != nil {
		return "", "", fmt.Errorf("build context: %w", err)
	}
	out := filepath.Join(root, "out")
	if !strings.Contains(cmd, "/out/nsguard") {
		return "", "", fmt.Errorf("Dockerfile: the go build line no longer writes /out/nsguard; update build_test.go")
	}
	cmd = strings.ReplaceAll(cmd, "/out/", out+"/")

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Dir = ctxDir
	// The golang image's environment: no GOFLAGS, the host's module and
	// build caches (so no download at test time once go build ./... ran).
	env := []string{"VERSION=" + testVersion, "COMMIT=" + testCommit, "GOFLAGS="}
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		switch k {
		case "GOFLAGS", "CGO_ENABLED", "GOOS", "GOARCH", "VERSION", "COMMIT", "GOEXPERIMENT":
			continue
		}
		env = append(env, e)
	}
	c.Env = env
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	if err := c.Run(); err != nil {
		return "", "", fmt.Errorf("the Dockerfile's build line failed in a .dockerignore-filtered context:\n$ %s\n%s%w", cmd, buf.String(), err)
	}
	return filepath.Join(out, "nsguard"), ctxDir, nil
}

// copyContext copies the repository into dst the way `docker build` sends
// it: paths matched by .dockerignore are left out.
func copyContext(repo, dst string) error {
	f, err := os.Open(filepath.Join(repo, ".dockerignore"))
	if err != nil {
		return err
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return err
	}
	return filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repo, p)
		if err != nil || rel == "." {
			return err
		}
		skip, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(p, target)
		}
		return nil // sockets, symlinks: nothing go build needs
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildRoot != "" {
		os.RemoveAll(buildRoot)
	}
	os.Exit(code)
}

// TestDockerBuildCommand runs the Dockerfile's build line and checks what
// the image promises: the stamped version, a static, stripped, trimmed
// binary.
func TestDockerBuildCommand(t *testing.T) {
	bin, ctxDir := buildNsguard(t)

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("nsguard version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), testVersion) || !strings.Contains(string(out), testCommit) {
		t.Fatalf("nsguard version printed %q, want it to show %s and %s", out, testVersion, testCommit)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP (dynamic loader): it will not run on distroless/static")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Error("the binary has a PT_DYNAMIC segment: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s did not apply")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(ctxDir)) {
		t.Errorf("the binary contains the build directory %s: -trimpath did not apply", ctxDir)
	}
}

// TestDockerContext: the files the image needs are in the context and the
// ones it must not carry are not.
func TestDockerContext(t *testing.T) {
	_, ctxDir := buildNsguard(t)
	for _, want := range []string{"go.mod", "go.sum", "cmd/nsguard/main.go", "config/config.go"} {
		if _, err := os.Stat(filepath.Join(ctxDir, want)); err != nil {
			t.Errorf("%s is not in the build context: %v", want, err)
		}
	}
	for _, absent := range []string{".git", "deploy/k8s/overlays/example/secrets"} {
		if _, err := os.Stat(filepath.Join(ctxDir, absent)); err == nil {
			t.Errorf("%s is in the build context; .dockerignore should leave it out", absent)
		}
	}
}
