package spec

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultPathTraversalInSpecRefused: every lab.yaml field that becomes part of a path labctl
// writes or deletes (tmp/<name>/, logs/<container>-*.log, Vagrant's boxes/<box>/, the disk
// image, the guest's mount point and the LXC template, download cache and apt suite paths) is
// refused at validation when it holds a traversal ("..", an absolute path, a slash), the error
// naming the field and the value and saying what to use.
func TestFaultPathTraversalInSpecRefused(t *testing.T) {
	faulttest.Count(t, "input", "spec-path-traversal")
	base := presetYAML(t, "bookworm")
	download := "image:\n      type: download\n      dist: debian\n      release: bookworm\n      arch: amd64"
	if _, err := Parse([]byte(strings.Replace(base, "image:\n      type: local", download, 1))); err != nil {
		t.Fatalf("the download image the cases below change is refused as it is: %v", err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"name: bookworm", "name: ../../etc", `name: "../../etc" is not a valid lab name: use`},
		{"name: bookworm", "name: a/../../b", `name: "a/../../b" is not a valid lab name: use`},
		{"- name: box1", "- name: ../../../etc/cron.d/x", `containers[0].name: "../../../etc/cron.d/x"`},
		{"parent: box1", "parent: ../box1", `"../box1"`},
		{"release: bookworm\nprovider", "name: org/../../../x\nprovider", `box.name: "org/../../../x" is not a valid Vagrant box name: use`},
		{"release: bookworm\nprovider", "name: a/..\nprovider", `box.name: "a/.." is not a valid Vagrant box name: use`},
		{"release: bookworm\nprovider", "name: a//b\nprovider", `box.name: "a//b" is not a valid Vagrant box name: use`},
		{"size: 20GiB", "size: 20GiB\n  image: ../../../etc/passwd", `disk.image: "../../../etc/passwd" is not a relative path inside the lab directory`},
		{"size: 20GiB", "size: 20GiB\n  image: /etc/passwd", `disk.image: "/etc/passwd" is not a relative path inside the lab directory`},
		{"mount_point: /mnt", "mount_point: /mnt/../etc", `btrfs.mount_point: "/mnt/../etc" is not a clean absolute path`},
		{"mount_point: /mnt", "mount_point: mnt/x", `btrfs.mount_point: "mnt/x" is not a clean absolute path`},
		{"image:\n      type: local", strings.Replace(download, "dist: debian", "dist: ../../../etc", 1), `containers[0].image.dist: "../../../etc" is not a distribution name`},
		{"image:\n      type: local", strings.Replace(download, "release: bookworm", "release: a/../../b", 1), `containers[0].image.release: "a/../../b" is not a release name`},
		{"image:\n      type: local", strings.Replace(download, "arch: amd64", "arch: ../x", 1), `containers[0].image.arch: "../x" is not an architecture`},
		{"image:\n      type: local", "image:\n      type: template\n      template: ../../bin/sh", `containers[0].image.template: "../../bin/sh" is not an LXC template name`},
		{"user: vagrant", "user: ../root", `user: "../root"`},
		{"link: lxcbr0", "link: ../eth0", `network.link: "../eth0"`},
		{"lxc:\n", "lxc:\n  suite: ../../x\n", `lxc.suite: "../../x"`},
		{"release: bookworm\nprovider", "release: bookworm\n  kernel: ../../x\nprovider", `box.kernel: "../../x"`},
	} {
		yaml := strings.Replace(base, c.old, c.new, 1)
		if yaml == base {
			t.Fatalf("%q is not in the preset", c.old)
		}
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", strings.TrimSpace(c.new), c.want, err)
		}
	}
}
