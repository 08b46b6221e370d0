package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	unitFile    = "systemd/nsguard.service"
	dropInFile  = "systemd/nsguard.service.d/postgres.conf"
	unitBinary  = "/usr/local/bin/nsguard"
	exposureMax = "15" // systemd-analyze security's 0..100 scale: 1.5 of 10
)

// unitDirectives reads a unit file into section → key → values (a key may
// repeat: ExecReload=, LoadCredential=).
func unitDirectives(src string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if out[section] == nil {
				out[section] = map[string][]string{}
			}
		default:
			k, v, _ := strings.Cut(line, "=")
			if section != "" {
				out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
			}
		}
	}
	return out
}

func TestUnitDirectives(t *testing.T) {
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	svc := unitDirectives(string(src))["Service"]
	for _, tt := range []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStart", unitBinary + " daemon --config /etc/nsguard/nsguard.yaml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Restart", "on-failure"},
		{"LoadCredential", "slack-token:/etc/nsguard/slack-token"},
		{"LoadCredential", "tsig.key:/etc/nsguard/tsig.key"},
		{"DynamicUser", "yes"},
		{"StateDirectory", "nsguard"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"MemoryMax", "512M"},
		{"SystemCallFilter", "@system-service"},
	} {
		if !slices.Contains(svc[tt.key], tt.want) {
			t.Errorf("[Service] %s=%s missing (have %q)", tt.key, tt.want, svc[tt.key])
		}
	}
	// The last ExecReload must be the signal: a failed config check before
	// it stops the reload and the daemon keeps its running config.
	if r := svc["ExecReload"]; len(r) == 0 || r[len(r)-1] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload= lines %q: the last must send SIGHUP", r)
	}
}

// verifyUnit runs `systemd-analyze verify` on unit text, with the nsguard
// path rewritten to bin (verify checks that ExecStart's binary exists).
// Verify exits 0 on an unknown directive and only warns, so any output at
// all is a failure.
func verifyUnit(t *testing.T, unit, bin string) error {
	t.Helper()
	return verifyUnitWith(t, unit, "", bin)
}

// verifyUnitWith is verifyUnit with a drop-in beside the unit (in
// nsguard.service.d/, where systemd-analyze reads it as systemd would).
func verifyUnitWith(t *testing.T, unit, dropIn, bin string) error {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nsguard.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, unitBinary, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if dropIn != "" {
		if err := os.Mkdir(path+".d", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path+".d", "postgres.conf"), []byte(dropIn), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return fmt.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	return nil
}

func TestSystemdVerify(t *testing.T) {
	bin, _ := buildNsguard(t)
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(src)
	if err := verifyUnit(t, unit, bin); err != nil {
		t.Fatal(err)
	}

	// Each broken copy must fail, or the check above proves nothing.
	for _, tt := range []struct{ name, old, new string }{
		{"typo in a directive", "ProtectHome=yes", "ProtectHom=yes"},
		{"bad value", "ProtectSystem=strict", "ProtectSystem=strictt"},
		{"misspelt section", "[Service]", "[Servce]"},
		{"binary missing", "ExecStart=" + unitBinary, "ExecStart=/nonexistent/nsguard"},
		{"bad address family", "AF_INET6 AF_UNIX", "AF_INET6 AF_UNIXX"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(unit, tt.old) {
				t.Fatalf("the unit no longer contains %q; update this test", tt.old)
			}
			if err := verifyUnit(t, strings.Replace(unit, tt.old, tt.new, 1), bin); err == nil {
				t.Fatalf("systemd-analyze verify accepted the unit with %q", tt.new)
			}
		})
	}
}

// TestSystemdSecurity scores the unit's sandbox offline and fails if the
// exposure rises above 1.5 (of 10; the unit scores 1.1): a hardening line
// removed by accident is caught here.
func TestSystemdSecurity(t *testing.T) {
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	score := func(unit string) error {
		path := filepath.Join(t.TempDir(), "nsguard.service")
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", "--threshold="+exposureMax, path).CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			return fmt.Errorf("%v: %s", err, lines[len(lines)-1])
		}
		return nil
	}
	if err := score(string(src)); err != nil {
		t.Fatalf("systemd-analyze security --threshold=%s: %v", exposureMax, err)
	}
	weak := strings.NewReplacer("PrivateDevices=yes\n", "", "ProtectKernelTunables=yes\n", "", "SystemCallFilter=@system-service\n", "", "RestrictNamespaces=yes\n", "").Replace(string(src))
	if err := score(weak); err == nil {
		t.Fatal("a unit without PrivateDevices, ProtectKernelTunables, SystemCallFilter and RestrictNamespaces still passed the threshold")
	}
}

// TestUnitConfigCheck: ExecStartPre's and ExecReload's `config check`
// accepts the production example once the credentials the unit loads are
// in place, and refuses it, naming them, when they are not: config check
// reads what the daemon and a failover run read. Every credential the
// example reads is one the unit loads.
func TestUnitConfigCheck(t *testing.T) {
	bin, _ := buildNsguard(t)
	const creds = "/run/credentials/nsguard.service/"
	example, err := os.ReadFile("examples/nsguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, v := range unitDirectives(string(unit))["Service"]["LoadCredential"] {
		loaded[strings.SplitN(v, ":", 2)[0]] = true
	}
	files := credentialStandIns()
	for _, line := range strings.Split(string(example), "\n") {
		if i := strings.Index(line, creds); i >= 0 && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			name := strings.Fields(line[i+len(creds):])[0]
			if !loaded[name] {
				t.Errorf("the example reads credential %s, which the unit does not load", name)
			}
			if _, ok := files[name]; !ok {
				t.Errorf("credential %s: the test has no stand-in for it", name)
			}
		}
	}
	// As systemd would run it: the credentials in place.
	if out, err := configCheckWith(t, bin, string(example), creds, files, t.TempDir()); err != nil {
		t.Errorf("nsguard config check (the example, credentials in place): %v\n%s", err, out)
	}
	// Without them, each is named.
	out, err := configCheckWith(t, bin, string(example), creds, nil, t.TempDir())
	if code := exitCode(err); code != 3 || !strings.Contains(string(out), "alerts.slack.token_file: read secret file") || !strings.Contains(string(out), "dns_update.tsig_file: tsig_file") {
		t.Errorf("nsguard config check without the credentials: exit %d\n%s", code, out)
	}
}

// TestUnitWithPostgres: the unit runs unchanged with the store in
// PostgreSQL. The shipped drop-in adds the database URL as one more
// credential and verifies with the unit (a typo in it is caught, so it is
// read); the unit's ExecStartPre `config check` accepts the production
// example moved to PostgreSQL with that credential in place, and without
// it names store.url_file.
func TestUnitWithPostgres(t *testing.T) {
	bin, _ := buildNsguard(t)
	const creds = "/run/credentials/nsguard.service/"
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile(dropInFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyUnitWith(t, string(unit), string(dropIn), bin); err != nil {
		t.Fatal(err)
	}
	if err := verifyUnitWith(t, string(unit), strings.Replace(string(dropIn), "LoadCredential=", "LoadCredentail=", 1), bin); err == nil {
		t.Fatal("systemd-analyze verify accepted a drop-in with a misspelt directive: the drop-in is not read")
	}
	var dbCred string
	for _, v := range unitDirectives(string(dropIn))["Service"]["LoadCredential"] {
		if name, src, _ := strings.Cut(v, ":"); src == "/etc/nsguard/db-url" {
			dbCred = name
		}
	}
	if dbCred == "" {
		t.Fatalf("%s loads no credential from /etc/nsguard/db-url", dropInFile)
	}
	if strings.Contains(string(unit), "db-url") {
		t.Error("the unit names the database URL itself: the drop-in is what a PostgreSQL store adds")
	}

	example, err := os.ReadFile("examples/nsguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sqlite := "store:\n  path: /var/lib/nsguard/nsguard.db\n"
	if !strings.Contains(string(example), sqlite) {
		t.Fatalf("the example's store is no longer %q; update this test", sqlite)
	}
	pg := strings.Replace(string(example), sqlite, "store:\n  url_file: "+creds+dbCred+"\n", 1)
	pg = strings.Replace(pg, "registry:\n", "registry:\n  cache_dir: /var/lib/nsguard\n", 1)
	for _, missing := range []string{"", dbCred} {
		files := credentialStandIns()
		if missing == "" {
			files[dbCred] = "postgres://nsguard:SECRET-PASSWORD@db.internal:5432/nsguard?sslmode=verify-full\n"
		}
		dir := t.TempDir()
		out, err := configCheckWith(t, bin, pg, creds, files, dir)
		if strings.Contains(string(out), "SECRET-PASSWORD") {
			t.Errorf("config check printed the database password:\n%s", out)
		}
		switch {
		case missing == "" && err != nil:
			t.Errorf("nsguard config check (the example on PostgreSQL, credentials in place): %v\n%s", err, out)
		case missing != "" && (exitCode(err) != 3 || !strings.Contains(string(out), "store.url_file: read secret file "+filepath.Join(dir, dbCred))):
			t.Errorf("nsguard config check without the database URL: exit %d\n%s", exitCode(err), out)
		}
	}
}

// credentialStandIns are the contents of the credentials the production
// example reads, by credential name.
func credentialStandIns() map[string]string {
	return map[string]string{
		"slack-token": "xoxb-0000-example\n",
		"tsig.key":    "key \"nsguard-switch\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=\";\n};\n",
	}
}

// configCheckWith runs `nsguard config check` on config with files written
// into dir and the credentials directory creds pointed at dir, as systemd
// would run it.
func configCheckWith(t *testing.T, bin, config, creds string, files map[string]string, dir string) ([]byte, error) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "nsguard.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(config, creds, dir+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(bin, "config", "check", cfg).CombinedOutput()
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDaemonCommand: `daemon --config`, which the unit's ExecStart and the
// image's CMD run, is a command of the binary.
func TestDaemonCommand(t *testing.T) {
	bin, _ := buildNsguard(t)
	if out, err := exec.Command(bin, "daemon", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--config") {
		t.Errorf("nsguard daemon --help (the unit's and the image's command): %v\n%s", err, out)
	}
}
