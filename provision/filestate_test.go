package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/provision/remote"
)

// localShell runs command lines in a real sh here (root's `sudo -n` dropped: root runs them
// as itself).
type localShell struct{}

func (localShell) Run(ctx context.Context, cmd string, opts remote.RunOpts) (remote.Result, error) {
	if os.Geteuid() == 0 {
		cmd = strings.TrimPrefix(cmd, "sudo -n ")
	}
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdin = opts.Stdin
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return remote.Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: ee.ExitCode()}, nil
	}
	return remote.Result{Stdout: out.String(), Stderr: errb.String()}, err
}

// TestFileStateOnARealShell: the whole-file check, its line run by a real sh with the real stat
// and sha256sum, tells a missing file, other content, another mode, a leftover of a cut write,
// and a file that is right.
func TestFileStateOnARealShell(t *testing.T) {
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil || exec.Command("sudo", "-n", "true").Run() != nil {
			t.Skip("the check runs as root: run as root or with sudo -n")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "lxc.conf")
	f := render.GuestFile{Path: p, Content: []byte("lxc.lxcpath = /mnt\n"), Owner: u.Username + ":" + g.Name, Mode: 0o644}
	vm := &remote.SSHVM{Conn: localShell{}}
	check := func(what string, wantDone bool, wantChange string) {
		t.Helper()
		done, change, err := FileState(context.Background(), vm, f)
		if err != nil || done != wantDone || !strings.Contains(change, wantChange) {
			t.Fatalf("%s: done %v, change %q, err %v; want done %v, change with %q", what, done, change, err, wantDone, wantChange)
		}
	}
	check("missing", false, "create "+p)
	os.WriteFile(p, []byte("lxc.lxcpath = /var/lib/lxc\n"), 0o644)
	check("other content", false, "content, owner or mode differs")
	os.WriteFile(p, f.Content, 0o644)
	os.Chmod(p, 0o600)
	check("mode 0600", false, "content, owner or mode differs")
	os.Chmod(p, 0o644)
	check("right", true, "")
	os.WriteFile(p+".labctl-tmp", []byte("lxc.lx"), 0o644)
	check("a cut write's leftover", false, "an interrupted write left")
}
