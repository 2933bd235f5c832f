package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// replay returns an Exec that prints a recorded vagrant output (with its progress bars) and
// exits with code, recording the arguments it was called with.
func replay(t *testing.T, file string, code int, calls *[][]string) func(ctx context.Context, env []string, args ...string) *exec.Cmd {
	return func(ctx context.Context, env []string, args ...string) *exec.Cmd {
		*calls = append(*calls, args)
		for _, want := range []string{"VAGRANT_CWD=", "VAGRANT_HOME=" + VagrantHome()} {
			found := false
			for _, e := range env {
				found = found || strings.HasPrefix(e, want)
			}
			if !found {
				t.Errorf("vagrant runs without %s", want)
			}
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", `cat "$1"; printf 'Progress: 10%%\rProgress: 90%%\r'; exit "$2"`, "replay", file, string(rune('0'+code)))
		return cmd
	}
}

func TestParseMachineState(t *testing.T) {
	data, err := os.ReadFile("testdata/vagrant/status-not-created.txt")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseMachineState(string(data))
	if err != nil || st != "not_created" {
		t.Fatalf("state %q, %v", st, err)
	}
	if _, err := ParseMachineState("garbage"); err == nil {
		t.Fatal("no state row must be an error")
	}
}

func TestVagrantUpStreamsProgressAndLogs(t *testing.T) {
	var calls [][]string
	var log, progress strings.Builder
	v := &Vagrant{Dir: t.TempDir(), Log: &log, Progress: &progress, Exec: replay(t, "testdata/vagrant/up-libvirt.txt", 0, &calls)}
	if err := v.Up(context.Background(), "libvirt"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls[0], " ") != "up --provider libvirt --no-provision" {
		t.Fatalf("called vagrant %v", calls[0])
	}
	if strings.Contains(log.String(), "Progress:") || strings.Contains(progress.String(), "Progress:") {
		t.Error("progress bars must be dropped")
	}
	if !strings.Contains(log.String(), "Warning: Connection reset. Retrying...") {
		t.Error("the log must keep every line")
	}
	if !strings.Contains(progress.String(), "  vagrant default: Machine booted and ready!") || strings.Contains(progress.String(), "Warning") {
		t.Errorf("the terminal shows only the ==> lines:\n%s", progress.String())
	}
}

func TestVagrantFailureSurfacesItsText(t *testing.T) {
	var calls [][]string
	v := &Vagrant{Dir: t.TempDir(), Exec: replay(t, "testdata/vagrant/ssh-config-not-created.txt", 1, &calls)}
	_, err := v.SSHConfig(context.Background())
	var ve *VagrantError
	if !errors.As(err, &ve) {
		t.Fatalf("want a VagrantError, got %v", err)
	}
	if !strings.Contains(err.Error(), "not yet ready for SSH") || !strings.Contains(err.Error(), "vagrant ssh-config failed") {
		t.Fatalf("the error must carry Vagrant's own text:\n%v", err)
	}
}

func TestAptSourcesReplaceCodename(t *testing.T) {
	lines := debianLines("deb", "http://mirror.invalid/debian", "bookworm bookworm-updates", "main", "bookworm", "trixie")
	if strings.Join(lines, "|") != "deb http://mirror.invalid/debian trixie main|deb http://mirror.invalid/debian trixie-updates main" {
		t.Fatalf("got %q", lines)
	}
	if got := debianLines("deb", "https://other.invalid/apt", "cloud-sdk-bookworm", "main", "bookworm", "trixie"); got != nil {
		t.Fatalf("a vendor repository must be left out, got %q", got)
	}
}

func TestBoxKeyFollowsRecipe(t *testing.T) {
	s, _ := Preset("bookworm")
	a := BoxRecipeFor(s)
	s.User = "lab"
	b := BoxRecipeFor(s)
	if a.Key() == b.Key() || a.Key() != BoxRecipeFor(mustPreset(t, "bookworm")).Key() {
		t.Fatal("the box key must change with the recipe and only with it")
	}
	if filepath.Base(a.File()) != "labctl.box" {
		t.Fatal(a.File())
	}
}

func mustPreset(t *testing.T, name string) *Spec {
	s, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
