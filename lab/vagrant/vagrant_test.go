package vagrant

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/host"
)

// replay returns an Exec that prints a recorded vagrant output (with its progress bars) and
// exits with code, recording the arguments it was called with.
func replay(t *testing.T, file string, code int, calls *[][]string) func(ctx context.Context, env []string, args ...string) *exec.Cmd {
	return func(ctx context.Context, env []string, args ...string) *exec.Cmd {
		*calls = append(*calls, args)
		for _, want := range []string{"VAGRANT_CWD=", "VAGRANT_HOME=" + host.VagrantHome()} {
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
	data, err := os.ReadFile("testdata/status-not-created.txt")
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
	v := &Driver{Dir: t.TempDir(), Log: &log, Progress: &progress, Provider: "libvirt", Exec: replay(t, "testdata/up-libvirt.txt", 0, &calls)}
	if err := v.Up(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls[0], " ") != "up --provider libvirt --no-provision" {
		t.Fatalf("called vagrant %v", calls[0])
	}
	if err := v.Up(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls[1], " ") != "up --provider libvirt --no-provision --no-destroy-on-error" {
		t.Fatalf("an existing VM must be kept on a failure, called vagrant %v", calls[1])
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
	v := &Driver{Dir: t.TempDir(), Exec: replay(t, "testdata/ssh-config-not-created.txt", 1, &calls)}
	_, err := v.SSHConfig(context.Background())
	var ve *VagrantError
	if !errors.As(err, &ve) {
		t.Fatalf("want a VagrantError, got %v", err)
	}
	if !strings.Contains(err.Error(), "not yet ready for SSH") || !strings.Contains(err.Error(), "vagrant ssh-config failed") {
		t.Fatalf("the error must carry Vagrant's own text:\n%v", err)
	}
}

// TestVagrantBootTimeoutIsNamed: `vagrant up` giving up on the guest's SSH (output recorded in
// CI, a guest that hung while booting) is told apart from other failures of vagrant.
func TestVagrantBootTimeoutIsNamed(t *testing.T) {
	var calls [][]string
	v := &Driver{Dir: t.TempDir(), Exec: replay(t, "testdata/up-boot-timeout.txt", 1, &calls)}
	err := v.Up(context.Background(), false)
	if !IsBootTimeout(err) || !strings.Contains(err.Error(), "config.vm.boot_timeout") {
		t.Fatalf("want a boot timeout, got %v", err)
	}
	v.Exec = replay(t, "testdata/ssh-config-not-created.txt", 1, &calls)
	if _, err := v.SSHConfig(context.Background()); err == nil || IsBootTimeout(err) {
		t.Fatalf("another failure taken for a boot timeout: %v", err)
	}
	if IsBootTimeout(errors.New(bootTimeoutText)) {
		t.Fatal("only vagrant's own failure is a boot timeout")
	}
}
