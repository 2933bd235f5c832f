package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMkfsLeavesOutWhatTheKernelCannotMount runs the format line in bash against a stand-in
// mkfs.btrfs that knows block-group-tree (as forky's 7.1 does) or not (bookworm's 6.2), and
// reads the arguments it got.
func TestMkfsLeavesOutWhatTheKernelCannotMount(t *testing.T) {
	for _, c := range []struct {
		kernel string
		knows  bool
		want   string
	}{
		{"5.10.0-32-amd64", true, "-f -O ^block-group-tree -L labctl /dev/sda"},
		{"5.10.0-32-amd64", false, "-f -L labctl /dev/sda"},
		{"6.1.0-57-amd64", true, "-f -L labctl /dev/sda"},
		{"7.2.12+deb14-amd64", true, "-f -L labctl /dev/sda"},
	} {
		bin := t.TempDir()
		list := "mixed-bg - mixed data and metadata block groups\n"
		if c.knows {
			list += "block-group-tree - block group tree\n"
		}
		stub := "#!/bin/sh\nif [ \"$1 $2\" = \"-O list-all\" ]; then printf '" + strings.ReplaceAll(list, "\n", "\\n") + "' >&2; exit 0; fi\necho \"$*\" > " + filepath.Join(bin, "args") + "\n"
		if err := os.WriteFile(filepath.Join(bin, "mkfs.btrfs"), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		p := &Provisioner{Facts: Facts{Kernel: c.kernel}}
		cmd := exec.Command("bash", "-euc", p.mkfsLine("/dev/sda"))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", c.kernel, err, out)
		}
		got, _ := os.ReadFile(filepath.Join(bin, "args"))
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("kernel %s, mkfs knows block-group-tree %v: mkfs.btrfs %s, want %s", c.kernel, c.knows, got, c.want)
		}
	}
}
