package provision

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCellFactsScriptOnARealShell runs the cell facts' script here (a real shell, this host's
// kernel): every key is printed, the probes of syscalls say yes or no, and the kernel is this
// one's.
func TestCellFactsScriptOnARealShell(t *testing.T) {
	out, err := exec.Command("sh", "-c", cellFactsScript).Output()
	if err != nil {
		t.Fatalf("the script failed here: %v\n%s", err, out)
	}
	kv := parseKV(string(out))
	uname, _ := exec.Command("uname", "-r").Output()
	if kv["kernel"] != strings.TrimSpace(string(uname)) {
		t.Errorf("kernel %q, want %q", kv["kernel"], uname)
	}
	for _, k := range []string{"config.USER_NS", "config.SECURITY_APPARMOR", "userns.max", "apparmor.parser", "systemd", "cgroup", "lxc", "lxc.from"} {
		if _, ok := kv[k]; !ok {
			t.Errorf("no %s in:\n%s", k, out)
		}
	}
	for _, k := range []string{"syscall.pidfd_open", "syscall.fsopen", "syscall.mount_setattr", "syscall.clone3", "seccomp.notify"} {
		if v := kv[k]; v != "yes" && v != "no" {
			t.Errorf("%s = %q, want yes or no", k, v)
		}
	}
	if c := kv["cgroup"]; c != "v1" && c != "v2" {
		t.Errorf("cgroup = %q", c)
	}
}
