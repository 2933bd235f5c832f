package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
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
	for v := range verbs {
		if _, errOut, code := run(t, t.TempDir(), v, "--help"); code != 0 || !strings.Contains(errOut, "Usage: labctl "+v) {
			t.Errorf("%s --help: exit %d\n%s", v, code, errOut)
		}
	}
	if _, errOut, code := run(t, t.TempDir(), "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown verb "frobnicate"`) {
		t.Fatalf("unknown verb: %d %s", code, errOut)
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

// TestPresetsShowRoundTrip: the printed lab.yaml is accepted back by -f.
func TestPresetsShowRoundTrip(t *testing.T) {
	dir := t.TempDir()
	out, _, code := run(t, dir, "presets", "show", "bullseye")
	if code != 0 {
		t.Fatal(code)
	}
	os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(out), 0o644)
	again, _, code := run(t, dir, "presets", "show", "bullseye")
	if code != 0 || again != out {
		t.Fatal("presets show is not stable")
	}
	if vout, verr, code := run(t, dir, "render", "-f", "lab.yaml", "-o", "r"); code != 0 {
		t.Fatalf("-f rejects what presets show printed: %s %s", vout, verr)
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
