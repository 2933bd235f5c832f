package spec

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultHarmfulSpecs: spec values that validated before but harm the guest's data are
// refused, each naming the field and the value.
func TestFaultHarmfulSpecs(t *testing.T) {
	base := presetYAML(t, "bookworm")
	for _, c := range []struct{ name, old, new, want string }{
		{"mount-over-home", "mount_point: /mnt", "mount_point: /home/vagrant", `btrfs.mount_point: "/home/vagrant" is in /home`},
		{"mount-over-var-lib", "mount_point: /mnt", "mount_point: /var/lib", `btrfs.mount_point: "/var/lib" is in /var`},
		{"mount-over-etc-lxc", "mount_point: /mnt", "mount_point: /etc/lxc", `btrfs.mount_point: "/etc/lxc" is in /etc`},
		{"mount-over-usr-lib", "mount_point: /mnt", "mount_point: /usr/lib", `btrfs.mount_point: "/usr/lib" is in /usr`},
		{"idmap-over-user", "start: 100000", "start: 1000", "idmap.start: 1000 overlaps"},
		{"idmap-explicit-zero", "start: 100000", "start: 0", "idmap.start: 0 is not allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			faulttest.Count(t, "input", "spec-"+c.name)
			_, err := Parse([]byte(strings.Replace(base, c.old, c.new, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want %q, got %v", c.want, err)
			}
		})
	}
}
