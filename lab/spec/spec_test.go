package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"
	"github.com/labctl/labctl/lab/release"
)

func presetYAML(t *testing.T, name string) string {
	t.Helper()
	data, err := PresetSource(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestInvalidSpecs feeds bad specs and checks each error names the field and the bad value.
func TestInvalidSpecs(t *testing.T) {
	base := presetYAML(t, "bookworm")
	trusty := presetYAML(t, "trusty")
	cases := []struct {
		name, from, old, new string
		want                 []string
	}{
		{"bad container name", base, "- name: box1", `- name: "box 1"`, []string{`containers[0].name: "box 1" is not a valid container name`}},
		{"unknown field", base, "cpus: 2", "cpus: 2\ncpu: 2", []string{"field cpu not found"}},
		{"bad lab name", base, "name: bookworm", "name: Book_Worm", []string{`name: "Book_Worm" is not a valid lab name`}},
		{"bad provider", base, "provider: libvirt", "provider: vmware", []string{`provider: "vmware" is not supported`}},
		{"release on virtualbox", base, "provider: libvirt", "provider: virtualbox", []string{`provider: "virtualbox" cannot boot box.release "bookworm"`}},
		{"unknown release", base, "release: bookworm", "release: sid", []string{`box.release: "sid" is not a release labctl can build`}},
		{"kernel suite the mirror lacks", presetYAML(t, "bullseye"), "release: bullseye", "release: bullseye\n  kernel: bullseye-backports", []string{`box.kernel: "bullseye-backports" is not a suite of the host's mirror labctl knows: use one of bullseye, bookworm, bookworm-backports`}},
		{"kernel suite on an existing box", trusty, "box:\n  name: trusty", "box:\n  name: trusty\n  kernel: trusty-backports", []string{`box.kernel: "trusty-backports" needs box.release`}},
		{"cgroup unknown", base, "release: bookworm", "release: bookworm\n  cgroup: v3", []string{`box.cgroup: "v3" is not supported: use v2 (the default) or v1`}},
		{"cgroup v1 on forky", presetYAML(t, "forky"), "release: forky", "release: forky\n  cgroup: v1", []string{`box.cgroup: "v1" cannot be v1 on forky: its systemd (262) boots on the unified hierarchy only`}},
		{"cgroup v1 on kernel 6.12", base, "release: bookworm", "release: bookworm\n  kernel: bookworm-backports\n  cgroup: v1", []string{`box.cgroup: "v1" cannot be v1 with kernel 6.12: kernels from 6.12 on lack the v1 memory and cpuset controllers`}},
		{"cgroup v1 on a named box", trusty, "box:\n  name: trusty", "box:\n  name: trusty\n  cgroup: v1", []string{`box.cgroup: "v1" needs box.release`}},
		{"lxc suite without lxc", base, "lxc:\n", "lxc:\n  suite: trixie-backports\n", []string{`lxc.suite: "trixie-backports" serves no LXC labctl knows`}},
		{"lxc suite and version disagree", base, "lxc:\n", "lxc:\n  suite: forky\n", []string{`lxc.version: "5.0.2" is not the LXC that lxc.suite forky serves (7.0.0): set lxc.version: 7.0.0`}},
		{"lxc suite unknown", base, "lxc:\n", "lxc:\n  suite: buster\n", []string{`lxc.suite: "buster" is not a suite of the host's mirror labctl knows`}},
		{"cgroup v1 with lxc 7", strings.Replace(base, "release: bookworm\n", "release: bookworm\n  cgroup: v1\n", 1), "lxc:\n  version: 5.0.2\n  expect: \"~> 5.0.0\"", "lxc:\n  suite: forky\n  version: 7.0.0", []string{`box.cgroup: "v1" cannot carry LXC 7.0.0: LXC from 7.0 mounts only the unified hierarchy`}},
		{"lxc 1.1 on cgroup v2", presetYAML(t, "bullseye"), "version: 4.0.6\n  expect: \"~> 4.0.0\"", "version: 1.1.5\n  expect: \"~> 1.1.0\"", []string{`lxc.version: "1.1.5" runs on cgroup v1 only`}},
		{"box name and release", base, "release: bookworm", "release: bookworm\n  name: foo", []string{"box: set either box.name or box.release"}},
		{"zero cpus", base, "cpus: 2", "cpus: -1", []string{"cpus: -1 is out of range"}},
		{"tiny memory", base, "memory: 2048", "memory: 100", []string{"memory: 100 is out of range"}},
		{"short boot timeout", base, "memory: 2048", "memory: 2048\nboot_timeout: 5", []string{"boot_timeout: 5 is out of range: use 10 to 3600 (seconds)"}},
		{"boot timeout not a number", base, "memory: 2048", "memory: 2048\nboot_timeout: 5m", []string{"line 9: boot_timeout: `5m` is not a whole number"}},
		{"port not a number", base, "  port: 1", "  port: first", []string{"disk.port: `first` is not a whole number"}},
		{"bad accelerator", base, "accelerator: auto", "accelerator: hvf", []string{`accelerator: "hvf" is not supported`}},
		{"bad kernel constraint", base, `kernel: "~> 6.1.0"`, `kernel: "six"`, []string{`kernel: "six" is not a version constraint`}},
		{"bad disk size", base, "size: 20GiB", "size: 20GB", []string{`disk.size: "20GB" is not a size`}},
		{"disk too small", base, "size: 20GiB", "size: 100MiB", []string{`disk.size: "100MiB" is too small`}},
		{"disk image escapes", trusty, "image: disk1.vdi", "image: ../../etc/disk.vdi", []string{`disk.image: "../../etc/disk.vdi" is not a relative path`}},
		{"bad bus", base, "bus: sata", "bus: ide", []string{`disk.bus: "ide" is not supported`}},
		{"port out of range", base, "port: 1", "port: 30", []string{"disk.port: 30 is out of range"}},
		{"bad guest device", trusty, "guest_device: /dev/sdb", "guest_device: sdb", []string{`disk.guest_device: "sdb" is not a device path`}},
		{"relative mount point", base, "mount_point: /mnt", "mount_point: mnt", []string{`btrfs.mount_point: "mnt" is not a clean absolute path`}},
		{"system mount point", base, "mount_point: /mnt", "mount_point: /etc", []string{`btrfs.mount_point: "/etc" is in /etc, a system or home tree`}},
		{"bad mount option", base, "options: [defaults, user_subvol_rm_allowed, nofail, x-systemd.device-timeout=90s]", "options: [defaults, 'x;rm -rf /']", []string{`btrfs.options[1]: "x;rm -rf /" is not a mount option`}},
		{"fstab by device without device", base, "fstab_by: uuid", "fstab_by: device", []string{`btrfs.fstab_by: "device" needs disk.guest_device`}},
		{"root user", base, "user: vagrant", "user: root", []string{`user: "root" is not a valid unprivileged user name`}},
		{"shell in user", base, "user: vagrant", "user: 'a$(id)'", []string{`user: "a$(id)" is not a valid unprivileged user name`}},
		{"low idmap", base, "start: 100000", "start: 500", []string{"idmap.start: 500 overlaps the ids of system and regular users"}},
		{"idmap over the user's own uid", base, "start: 100000", "start: 1000", []string{"idmap.start: 1000 overlaps"}},
		{"explicit idmap 0", base, "start: 100000", "start: 0", []string{"idmap.start: 0 is not allowed: leave the field out"}},
		{"explicit cpus 0", base, "cpus: 2", "cpus: 0", []string{"cpus: 0 is not allowed"}},
		{"explicit boot_timeout 0", base, "memory: 2048", "memory: 2048\nboot_timeout: 0", []string{"boot_timeout: 0 is not allowed"}},
		{"mount over home", base, "mount_point: /mnt", "mount_point: /home/vagrant", []string{`btrfs.mount_point: "/home/vagrant" is in /home, a system or home tree`}},
		{"mount over var/lib", base, "mount_point: /mnt", "mount_point: /var/lib", []string{`btrfs.mount_point: "/var/lib" is in /var`}},
		{"mount over etc/lxc", base, "mount_point: /mnt", "mount_point: /etc/lxc", []string{`"/etc/lxc" is in /etc`}},
		{"mount over usr/lib", base, "mount_point: /mnt", "mount_point: /usr/lib", []string{`"/usr/lib" is in /usr`}},
		{"small idmap", base, "count: 65536", "count: 1000", []string{"idmap.count: 1000 is too small"}},
		{"bad network type", base, "type: veth", "type: macvlan", []string{`network.type: "macvlan" is not supported`}},
		{"long bridge", base, "link: lxcbr0", "link: averyveryverylongbridge", []string{`network.link: "averyveryverylongbridge" is not a valid bridge name`}},
		{"bad max veths", base, "max_veths: 10", "max_veths: -3", []string{"network.max_veths: -3 is out of range"}},
		{"bad lxc version", base, "version: 5.0.2", "version: five", []string{`lxc.version: "five" is not a version`}},
		{"expect disagrees", base, `expect: "~> 5.0.0"`, `expect: "~> 6.0.0"`, []string{`lxc.expect: "~> 6.0.0" does not admit lxc.version "5.0.2"`}},
		{"duplicate container", base, "- name: n1", "- name: box1", []string{`containers[1].name: "box1" is already used by containers[0]`}},
		{"unknown parent", base, "parent: box1", "parent: box9", []string{`containers[1].parent: "box9" is not a container listed before this one`}},
		{"parent without nesting", base, "    nesting: true", "    nesting: false", []string{`containers[1].parent: "box1" does not allow nesting`}},
		{"privileged top level", base, "    unprivileged: true", "    unprivileged: false", []string{"containers[0].unprivileged: false must be true"}},
		{"bad image type", base, "type: busybox", "type: docker", []string{`containers[1].image.type: "docker" is not supported`}},
		{"local on old lxc", base, "version: 5.0.2\n  expect: \"~> 5.0.0\"", "version: 2.0.8\n  expect: \"~> 2.0.0\"", []string{`containers[0].image.type: "local" needs LXC >= 3.0`}},
		{"bad apparmor", base, "apparmor: generated", "apparmor: off", []string{`containers[0].apparmor: "off" is not supported`}},
		{"btrfs nested", base, "backing: dir", "backing: btrfs", []string{`containers[1].backing: "btrfs" is only supported for containers of the VM`}},
		{"download without dist", trusty, "dist: ubuntu", "dist: ''", []string{`containers[0].image.dist: "" is not a distribution name`}},
		{"two documents", base, "name: bookworm", "name: bookworm\n---\nname: other", []string{"more than one YAML document"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.from, c.old) {
				t.Fatalf("preset has no %q to replace", c.old)
			}
			_, err := Parse([]byte(strings.Replace(c.from, c.old, c.new, 1)))
			if err == nil {
				t.Fatal("accepted a bad spec")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestEmptySpec(t *testing.T) {
	if _, err := Parse(nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("want an error about an empty spec, got %v", err)
	}
}

// TestPresetsRoundTrip: `presets show NAME` prints a lab.yaml that parses back unchanged.
func TestPresetsRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		s, err := Preset(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: marshalled preset does not parse: %v\n%s", name, err, out)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(out, again) {
			t.Errorf("%s changed on the round trip:\n%s\n---\n%s", name, out, again)
		}
	}
}

func TestDefaultPresetIsBookworm(t *testing.T) {
	s, err := Preset(DefaultPreset)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "bookworm" || s.ProviderFor() != "libvirt" {
		t.Fatalf("default preset is %s on %s", s.Name, s.ProviderFor())
	}
}

// TestResolve: -f, else --preset, else dir/lab.yaml, else the default preset; both is an error.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if s, err := Resolve("", "", dir); err != nil || s.Name != DefaultPreset {
		t.Fatalf("empty dir: %v %v", s, err)
	}
	if s, err := Resolve("", "trixie", dir); err != nil || s.Name != "trixie" {
		t.Fatalf("--preset trixie: %v %v", s, err)
	}
	own := strings.Replace(presetYAML(t, "bullseye"), "name: bullseye", "name: mine", 1)
	if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Resolve("", "", dir); err != nil || s.Name != "mine" {
		t.Fatalf("dir/lab.yaml: %v %v", s, err)
	}
	if s, err := Resolve(filepath.Join(dir, "lab.yaml"), "", t.TempDir()); err != nil || s.Name != "mine" {
		t.Fatalf("-f: %v %v", s, err)
	}
	if _, err := Resolve("x.yaml", "bookworm", dir); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("-f and --preset: %v", err)
	}
}

// TestPresetsAgreeWithReleases: a preset that boots a release labctl builds targets the
// kernel and LXC that release's row says it ships.
func TestPresetsAgreeWithReleases(t *testing.T) {
	for _, name := range PresetNames() {
		s, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Box.Release == "" {
			continue
		}
		r, err := release.Lookup(s.Box.Release)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.LXC.Version != r.LXC {
			t.Errorf("%s: lxc.version %s, but %s ships LXC %s", name, s.LXC.Version, r.Name, r.LXC)
		}
		kc, err := version.NewConstraint(s.Kernel)
		if err != nil || !kc.Check(version.Must(version.NewVersion(r.Kernel))) {
			t.Errorf("%s: kernel %q does not admit %s's kernel %s", name, s.Kernel, r.Name, r.Kernel)
		}
	}
}

// TestInitReadsBack: what `labctl init` writes is commented and parses back into the preset.
func TestInitReadsBack(t *testing.T) {
	for _, name := range PresetNames() {
		data, err := Init(name)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: init's lab.yaml does not parse: %v\n%s", name, err, data)
		}
		want, _ := Preset(name)
		a, _ := want.Marshal()
		b, _ := back.Marshal()
		if !bytes.Equal(a, b) {
			t.Errorf("%s: init's lab.yaml reads back as another lab:\n%s\n---\n%s", name, a, b)
		}
		for _, c := range []string{"# lab.yaml written by `labctl init", "# the unprivileged user that owns the containers", "# let it run containers of its own"} {
			if !strings.Contains(string(data), c) {
				t.Errorf("%s: init's lab.yaml lacks the comment %q", name, c)
			}
		}
	}
}

// TestAcceptedMountPoints: /mnt, /srv, /data, /media and below, or a new top-level directory.
func TestAcceptedMountPoints(t *testing.T) {
	base := presetYAML(t, "bookworm")
	for _, mp := range []string{"/mnt", "/mnt/lab", "/srv/btrfs", "/data", "/media/disk", "/labdisk"} {
		if _, err := Parse([]byte(strings.Replace(base, "mount_point: /mnt", "mount_point: "+mp, 1))); err != nil {
			t.Errorf("%s: %v", mp, err)
		}
	}
}

// TestBoxFlavourNamesTheAxes: a box's name says its userland, where its kernel and LXC come
// from and its cgroup hierarchy, so two cells on different axes never share a box.
func TestBoxFlavourNamesTheAxes(t *testing.T) {
	for _, c := range []struct{ preset, old, new, want string }{
		{"bookworm", "", "", "labctl/bookworm"},
		{"bookworm", "release: bookworm", "release: bookworm\n  kernel: bookworm-backports", "labctl/bookworm-backports"},
		{"bookworm", "release: bookworm", "release: bookworm\n  cgroup: v1", "labctl/bookworm-cgroup1"},
		{"forky", "release: forky", "release: forky\n  kernel: bullseye", "labctl/forky-k-bullseye"},
		{"forky", "lxc:\n  version: 7.0.0", "lxc:\n  suite: bullseye\n  version: 4.0.6", "labctl/forky-lxc-bullseye"},
		{"forky", "release: forky", "release: forky\n  kernel: trixie-backports\n  cgroup: v2", "labctl/forky-k-trixie-backports"},
	} {
		src := presetYAML(t, c.preset)
		if !strings.Contains(src, c.old) {
			t.Fatalf("%s: the preset has no %q", c.preset, c.old)
		}
		src = strings.Replace(src, c.old, c.new, 1)
		src = strings.ReplaceAll(src, `expect: "~> 7.0.0"`, "")
		s, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("%s: %v", c.want, err)
			continue
		}
		if got := s.BoxName(); got != c.want {
			t.Errorf("box name %s, want %s", got, c.want)
		}
	}
}
