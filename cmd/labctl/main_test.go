package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "labctl-cli-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "labctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs labctl in dir and returns stdout, stderr and the exit code.
func run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runEnv(t, dir, nil, args...)
}

// runEnv runs labctl in dir with env (nil: this process's) and returns stdout, stderr and
// the exit code; it is killed after 30 s.
func runEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestHelpEverywhere(t *testing.T) {
	if out, _, code := run(t, t.TempDir(), "--help"); code != 0 || !strings.Contains(out, "render") {
		t.Fatalf("--help: %d %s", code, out)
	}
	verbs := 0
	for _, c := range newRoot().Commands() {
		v := c.Name()
		verbs++
		if out, errOut, code := run(t, t.TempDir(), v, "--help"); code != 0 || !strings.Contains(out, "labctl "+v) || !strings.Contains(out, "--preset") {
			t.Errorf("%s --help: exit %d\n%s%s", v, code, out, errOut)
		}
	}
	if verbs < 15 {
		t.Errorf("only %d verbs have help", verbs)
	}
	if _, errOut, code := run(t, t.TempDir(), "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown verb "frobnicate"`) {
		t.Fatalf("unknown verb: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, t.TempDir(), "render", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "--no-such-flag") {
		t.Fatalf("unknown flag: %d %s", code, errOut)
	}
}

// TestFlagsAnywhere: a verb's flags after its arguments are read, and exec never reads the
// words of the command it runs as its own flags.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run(t, dir, "presets", "show", "trusty", "--preset", "bullseye"); code != 0 {
		t.Fatalf("flags after the arguments: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, dir, "render", "-o", "x", "--preset", "bullseye"); code != 0 {
		t.Fatalf("render: %d %s", code, errOut)
	}
	// No lab is up here: exec fails to connect, but only after reading `-f` as the command's.
	_, errOut, code := run(t, dir, "exec", "--preset", "nope-not-read", "hostname", "-f")
	if code == 0 || strings.Contains(errOut, "unknown shorthand") || !strings.Contains(errOut, `preset "nope-not-read" does not exist`) {
		t.Fatalf("exec read the command's words as its flags: %d %s", code, errOut)
	}
}

// TestCompletion: shell completion scripts for bash, zsh and fish.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := run(t, t.TempDir(), "completion", sh)
		if code != 0 || !strings.Contains(out, "labctl") {
			t.Errorf("completion %s: %d %s", sh, code, errOut)
		}
	}
}

func TestRenderTrusty(t *testing.T) {
	dir := t.TempDir()
	out, _, code := run(t, dir, "render", "--preset", "trusty", "-o", "out")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"out/Vagrantfile", "out/guest/home/vagrant/.config/lxc/default.conf", "out/guest/etc/subuid.lines", "out/guest/mnt/box1/config.lines"} {
		if !strings.Contains(out, f) {
			t.Errorf("render did not say it wrote %s:\n%s", f, out)
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestPresetsShowRoundTrip: the printed lab.yaml is read back by -f into the very same lab:
// it renders byte for byte as the preset does.
func TestPresetsShowRoundTrip(t *testing.T) {
	dir := t.TempDir()
	out, _, code := run(t, dir, "presets", "show", "bullseye")
	if code != 0 {
		t.Fatal(code)
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if vout, verr, code := run(t, dir, "render", "-f", "lab.yaml", "-o", "from-file"); code != 0 {
		t.Fatalf("-f rejects what presets show printed: %s %s", vout, verr)
	}
	if vout, verr, code := run(t, dir, "render", "--preset", "bullseye", "-o", "from-preset"); code != 0 {
		t.Fatalf("render --preset: %s %s", vout, verr)
	}
	files := 0
	err := filepath.WalkDir(filepath.Join(dir, "from-preset"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(dir, "from-preset"), p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dir, "from-file", rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs between the preset and its printed lab.yaml (%v)", rel, err)
		}
		files++
		return nil
	})
	if err != nil || files < 5 {
		t.Fatalf("compared %d files: %v", files, err)
	}
}

// TestBadSpecFailsClearly: a bad spec exits non-zero, names the field and value, and writes
// nothing.
func TestBadSpecFailsClearly(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := run(t, dir, "presets", "show", "bookworm")
	bad := strings.Replace(out, "name: box1", `name: "box 1"`, 1)
	os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(bad), 0o644)
	_, errOut, code := run(t, dir, "render", "-f", "lab.yaml")
	if code == 0 || !strings.Contains(errOut, `containers[0].name: "box 1" is not a valid container name`) {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); err == nil {
		t.Fatal("a rejected spec must change nothing, but tmp/ was created")
	}
	if _, errOut, code := run(t, dir, "render", "--preset", "nope"); code == 0 || !strings.Contains(errOut, `preset "nope" does not exist`) {
		t.Fatalf("unknown preset: %d %s", code, errOut)
	}
}

// TestInit: init writes a commented lab.yaml that -f reads back, and never overwrites one.
func TestInit(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := run(t, dir, "init", "--preset", "trixie")
	if code != 0 || !strings.Contains(out, "wrote lab.yaml") {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lab.yaml"))
	if err != nil || !strings.Contains(string(data), "# the unprivileged user that owns the containers") {
		t.Fatalf("lab.yaml: %v\n%s", err, data)
	}
	if out, errOut, code := run(t, dir, "render", "-o", "r"); code != 0 || !strings.Contains(out, "r/Vagrantfile") {
		t.Fatalf("./lab.yaml as init wrote it is not read back: %d %s %s", code, out, errOut)
	}
	_, errOut, code = run(t, dir, "init")
	again, _ := os.ReadFile(filepath.Join(dir, "lab.yaml"))
	if code == 0 || !strings.Contains(errOut, "never overwrites") || !bytes.Equal(again, data) {
		t.Fatalf("a second init must refuse and change nothing: %d %s", code, errOut)
	}
}

// TestExecWithoutVM: a verb that needs the VM says, on a lab that has none, what to do.
func TestExecWithoutVM(t *testing.T) {
	_, errOut, code := run(t, t.TempDir(), "exec", "--", "true")
	if code != 1 || !strings.Contains(errOut, "lab bookworm has no VM") || !strings.Contains(errOut, "labctl up") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// TestValidateRefusesAnImpossibleTree: `labctl validate` refuses a tree labctl cannot build (a
// busybox container, which has no LXC, holding one) in under a second, naming the container,
// and writes nothing: no lab directory, no box, no VM.
func TestValidateRefusesAnImpossibleTree(t *testing.T) {
	dir := t.TempDir()
	out, _, _ := run(t, dir, "presets", "show", "bookworm")
	i := strings.Index(out, "containers:")
	spec := out[:i] + `containers:
  - {name: web, unprivileged: true, backing: btrfs, image: {type: local}, nesting: true}
  - {name: db, unprivileged: true, backing: btrfs, image: {type: local}}
  - {name: mid, parent: web, backing: dir, image: {type: busybox}, nesting: true}
  - {name: leaf, parent: mid, backing: dir, image: {type: busybox}}
`
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errOut, code := run(t, dir, "validate")
	took := time.Since(start)
	if code != 1 || !strings.Contains(errOut, `containers[2].image.type: "busybox" mid nests (it holds leaf), but a busybox image carries no LXC`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if took > time.Second {
		t.Errorf("validate took %s to refuse it", took)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); err == nil {
		t.Error("validate of a refused spec made tmp/")
	}
	t.Logf("refused in %s", took.Round(time.Millisecond))
}

// TestStateDir: --state-dir puts a lab's directory where it says, not in ./tmp, and every verb
// finds it there; the working directory gets nothing.
func TestStateDir(t *testing.T) {
	dir, state := t.TempDir(), filepath.Join(t.TempDir(), "labs")
	_, errOut, code := run(t, dir, "render", "--preset", "bookworm", "--state-dir", state)
	if code != 0 {
		t.Fatalf("render: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(state, "bookworm", "Vagrantfile")); err != nil {
		t.Fatalf("render --state-dir wrote no Vagrantfile there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tmp")); err == nil {
		t.Fatal("render --state-dir made ./tmp")
	}
	out, _, code := run(t, dir, "agent", "stop", "--preset", "bookworm", "--state-dir", state)
	if code != 0 || !strings.Contains(out, "no agent runs") {
		t.Fatalf("agent stop: %d %s", code, out)
	}
}

// TestVersion: labctl version names itself, its Go, and the releases and LXC versions it knows.
func TestVersion(t *testing.T) {
	out, _, code := run(t, t.TempDir(), "version")
	for _, w := range []string{"labctl ", "\ncommit ", "go1.", "bookworm  debian: kernel 6.1, LXC 5.0.2, boxes built here", ">= 7.0  LXC >= 7.0"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("version (exit %d) lacks %q:\n%s", code, w, out)
		}
	}
}
