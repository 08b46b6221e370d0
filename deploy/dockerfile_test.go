package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dfInstr is one Dockerfile instruction, continuation lines joined.
type dfInstr struct {
	Cmd  string // upper-case: FROM, RUN, …
	Args string
	Line int
}

// dfStage is one FROM … block.
type dfStage struct {
	Image, Name string
	Instrs      []dfInstr
}

// parseDockerfile reads the subset of Dockerfile syntax nsguard's file uses
// (comments, '\' continuations, no heredocs). BuildKit's own parser lives
// in github.com/moby/buildkit, whose requirements would upgrade shared
// modules for the whole repository.
func parseDockerfile(src string) (global []dfInstr, stages []dfStage, err error) {
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for strings.HasSuffix(line, `\`) {
			line = strings.TrimSuffix(line, `\`)
			i++
			for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "#") {
				i++ // comments inside a continuation are dropped
			}
			if i >= len(lines) {
				return nil, nil, fmt.Errorf("line %d: continuation at end of file", start)
			}
			line += " " + strings.TrimSpace(lines[i])
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dfInstr{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := dfStage{}
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=…
			}
			switch {
			case len(f) == 1:
				st.Image = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.Image, st.Name = f[0], f[2]
			default:
				return nil, nil, fmt.Errorf("line %d: cannot read FROM %s", start, in.Args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].Instrs = append(stages[len(stages)-1].Instrs, in)
	}
	if len(stages) == 0 {
		return nil, nil, fmt.Errorf("no FROM")
	}
	return global, stages, nil
}

// goBuildRun returns the build stage's RUN line that runs `go build`, with
// BuildKit's --mount flags removed: the shell command Docker runs.
func goBuildRun(st dfStage) (dfInstr, string, bool) {
	for _, in := range st.Instrs {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		f := in.Args
		for strings.HasPrefix(f, "--") {
			_, rest, _ := strings.Cut(f, " ")
			f = strings.TrimSpace(rest)
		}
		return in, f, true
	}
	return dfInstr{}, "", false
}

const (
	finalBase  = "gcr.io/distroless/static-debian12:nonroot"
	wantEntry  = `["/nsguard"]`
	wantCmd    = `["daemon","--config","/etc/nsguard/nsguard.yaml"]`
	storeDir   = "/var/lib/nsguard"
	distroless = 65532 // the nonroot user of distroless images
)

var (
	ldflagsRe = regexp.MustCompile(`-ldflags[ =]("[^"]*"|'[^']*'|\S+)`)
	xVersion  = regexp.MustCompile(`-X main\.version=\$\{?VERSION\}?(\s|$)`)
	xCommit   = regexp.MustCompile(`-X main\.commit=\$\{?COMMIT\}?(\s|$)`)
)

// checkDockerfile lists every way src departs from the image issue 7 asks
// for; goMinor is go.mod's "1.26".
func checkDockerfile(src, goMinor string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	_, stages, err := parseDockerfile(src)
	if err != nil {
		return []string{err.Error()}
	}
	if len(stages) < 2 {
		return []string{fmt.Sprintf("want a multi-stage build, got %d stage(s)", len(stages))}
	}
	build, final := stages[0], stages[len(stages)-1]

	if img := build.Image; img != "golang:"+goMinor && !strings.HasPrefix(img, "golang:"+goMinor+"-") && !strings.HasPrefix(img, "golang:"+goMinor+".") {
		fail("builder image %s: want golang:%s (go.mod's Go)", img, goMinor)
	}
	if build.Name == "" {
		fail("the builder stage needs a name (FROM … AS build) for COPY --from")
	}
	run, cmd, ok := goBuildRun(build)
	if !ok {
		fail("no RUN … go build in the builder stage")
	} else {
		cgoOff := regexp.MustCompile(`(^|\s)CGO_ENABLED=0\s`).MatchString(cmd)
		for _, in := range build.Instrs {
			if in.Cmd == "ENV" && in.Line < run.Line && regexp.MustCompile(`(^|\s)CGO_ENABLED[= ]0(\s|$)`).MatchString(in.Args) {
				cgoOff = true
			}
		}
		if !cgoOff {
			fail("line %d: go build needs CGO_ENABLED=0 for a static binary", run.Line)
		}
		if !strings.Contains(cmd, "-trimpath") {
			fail("line %d: go build needs -trimpath", run.Line)
		}
		m := ldflagsRe.FindStringSubmatch(cmd)
		if m == nil {
			fail("line %d: go build needs -ldflags", run.Line)
		} else {
			ld := strings.Trim(m[1], `"'`)
			for _, flag := range []string{"-s", "-w"} {
				if !slices.Contains(strings.Fields(ld), flag) {
					fail("line %d: -ldflags lacks %s", run.Line, flag)
				}
			}
			if !xVersion.MatchString(ld) {
				fail("line %d: -ldflags must set -X main.version=${VERSION}", run.Line)
			}
			if !xCommit.MatchString(ld) {
				fail("line %d: -ldflags must set -X main.commit=${COMMIT}", run.Line)
			}
		}
		for _, arg := range []string{"VERSION", "COMMIT"} {
			declared := false
			for _, in := range build.Instrs {
				name, _, _ := strings.Cut(in.Args, "=")
				declared = declared || (in.Cmd == "ARG" && name == arg && in.Line < run.Line)
			}
			if !declared {
				fail("ARG %s is not declared in the builder stage before line %d", arg, run.Line)
			}
		}
		if !strings.Contains(cmd, "./cmd/nsguard") {
			fail("line %d: go build must build ./cmd/nsguard", run.Line)
		}
	}

	if img, _, _ := strings.Cut(final.Image, "@"); img != finalBase {
		fail("final image %s: want %s", final.Image, finalBase)
	}
	var user, entry, cmdJSON string
	var volumes, exposed []string
	copied := false
	for _, in := range final.Instrs {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		case "CMD":
			cmdJSON = in.Args
		case "VOLUME":
			volumes = append(volumes, volumeArgs(in.Args)...)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.Args)...)
		case "RUN":
			fail("line %d: RUN in the final stage: distroless has no shell", in.Line)
		case "ADD":
			fail("line %d: ADD in the final stage; COPY --from the builder", in.Line)
		case "COPY":
			f := strings.Fields(in.Args)
			if len(f) >= 3 && slices.Contains(f, "--from="+build.Name) && f[len(f)-1] == "/nsguard" {
				copied = true
			}
		}
	}
	if !copied {
		fail("the final stage must COPY --from=%s the binary to /nsguard", build.Name)
	}
	u, _, _ := strings.Cut(user, ":")
	switch u {
	case "":
		fail("the final stage sets no USER: it would run as root")
	case "root", "0":
		fail("USER %s: run as a non-root user", user)
	case "nonroot", fmt.Sprint(distroless):
	default:
		fail("USER %s: want distroless's nonroot (%d)", user, distroless)
	}
	if !jsonEqual(entry, wantEntry) {
		fail("ENTRYPOINT %s: want %s (exec form)", entry, wantEntry)
	}
	if !jsonEqual(cmdJSON, wantCmd) {
		fail("CMD %s: want %s", cmdJSON, wantCmd)
	}
	if !slices.Contains(volumes, storeDir) {
		fail("no VOLUME %s for the store", storeDir)
	}
	if !slices.Contains(exposed, "9153") && !slices.Contains(exposed, "9153/tcp") {
		fail("EXPOSE 9153 (metrics, health) missing")
	}
	return errs
}

func volumeArgs(s string) []string {
	var list []string
	if json.Unmarshal([]byte(s), &list) == nil {
		return list
	}
	return strings.Fields(s)
}

func jsonEqual(got, want string) bool {
	var g, w []string
	return json.Unmarshal([]byte(got), &g) == nil && json.Unmarshal([]byte(want), &w) == nil && slices.Equal(g, w)
}

// goModMinor returns go.mod's language version as "1.26".
func goModMinor(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func readDockerfile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDockerfile(t *testing.T) {
	if errs := checkDockerfile(readDockerfile(t), goModMinor(t)); len(errs) > 0 {
		t.Fatalf("Dockerfile:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDockerfileChecksFail mutates the real Dockerfile one way at a time;
// the check must notice each.
func TestDockerfileChecksFail(t *testing.T) {
	src := readDockerfile(t)
	goMinor := goModMinor(t)
	for _, tt := range []struct {
		name, old, new, want string
	}{
		{"cgo on", "CGO_ENABLED=0 go build", "CGO_ENABLED=1 go build", "CGO_ENABLED=0"},
		{"no trimpath", "-trimpath ", "", "-trimpath"},
		{"no version stamp", "-X main.version=${VERSION} ", "", "main.version"},
		{"commit to wrong var", "-X main.commit=${COMMIT}", "-X main.Commit=${COMMIT}", "main.commit"},
		{"not stripped", `-ldflags "-s -w `, `-ldflags "`, "lacks -s"},
		{"runs as root", "USER 65532:65532", "USER root", "non-root"},
		{"no user", "USER 65532:65532\n", "\n", "sets no USER"},
		{"fat base", "FROM " + finalBase, "FROM debian:bookworm-slim", "final image"},
		{"single stage", "FROM " + finalBase, "#", "multi-stage"},
		{"old go", "FROM golang:" + goMinor + " ", "FROM golang:1.21 ", "want golang:" + goMinor},
		{"shell entrypoint", `ENTRYPOINT ["/nsguard"]`, `ENTRYPOINT /nsguard`, "exec form"},
		{"no volume", "VOLUME " + storeDir, "", "VOLUME"},
		{"no expose", "EXPOSE 9153", "", "EXPOSE 9153"},
		{"run in final", "USER 65532:65532", "RUN chmod 755 /nsguard\nUSER 65532:65532", "no shell"},
		{"undeclared arg", "ARG COMMIT=none", "", "ARG COMMIT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("the Dockerfile no longer contains %q; update this test", tt.old)
			}
			errs := checkDockerfile(strings.Replace(src, tt.old, tt.new, 1), goMinor)
			if !strings.Contains(strings.Join(errs, "\n"), tt.want) {
				t.Fatalf("mutation %q: errors %q, want one mentioning %q", tt.name, errs, tt.want)
			}
		})
	}
}
