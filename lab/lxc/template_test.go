package lxc

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// tarOf is a tar of files (path -> content; a path ending in / is a directory), owned by uid
// and gid 1234 in the archive, compressed by the command given.
func tarOf(t *testing.T, files map[string]string, compress ...string) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range sortedNames(files) {
		h := &tar.Header{Name: name, Mode: 0o644, Uid: 1234, Gid: 1234, Size: int64(len(files[name])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h.Mode, h.Size, h.Typeflag = 0o755, 0, tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	cmd := exec.Command(compress[0], compress[1:]...)
	cmd.Stdin = &raw
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", compress, err)
	}
	return out
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestImageTemplateMakesAContainer runs labctl's template for real (sh, tar, zstd, xz), as
// lxc-create would, with and without an id map, on an image with labctl's metadata.
func TestImageTemplateMakesAContainer(t *testing.T) {
	for _, tool := range []string{"sh", "tar", "zstd", "xz", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (`make deps` installs it)", tool)
		}
	}
	dir := t.TempDir()
	tmpl := filepath.Join(dir, ImageTemplateName)
	os.WriteFile(tmpl, []byte(ImageTemplate), 0o755)
	fstree := filepath.Join(dir, "rootfs.tar.zst")
	os.WriteFile(fstree, tarOf(t, map[string]string{
		"./": "", "./etc/": "", "./dev/": "",
		"./etc/hostname": "LXC_NAME\n", "./etc/hosts": "127.0.1.1 LXC_NAME\n", "./etc/motd": "LXC_NAME stays\n",
		"./dev/marker": "a device stand-in\n",
	}, "zstd", "-q", "-c"), 0o644)
	meta := filepath.Join(dir, "meta.tar.xz")
	m := map[string]string{}
	for k, v := range ImageMeta {
		m["./"+k] = v
	}
	os.WriteFile(meta, tarOf(t, m, "xz", "-c"), 0o644)

	for _, tc := range []struct {
		name   string
		mapped bool
	}{{"c-system", false}, {"c-user", true}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			rootfs := filepath.Join(path, "rootfs")
			os.MkdirAll(rootfs, 0o755)
			own := "lxc.rootfs.path = btrfs:" + rootfs + "\nlxc.idmap = u 0 100000 65536\nlxc.net.0.type = veth\n"
			os.WriteFile(filepath.Join(path, "config"), []byte(own), 0o644)
			// As lxc-create calls it: labctl's arguments, then LXC's own as --opt=value.
			args := []string{tmpl, "--metadata", meta, "--fstree", fstree, "--name=" + tc.name, "--path=" + path, "--rootfs=" + rootfs}
			if tc.mapped {
				args = append(args, "--mapped-uid=1000", "--mapped-gid=1000")
			}
			if out, err := exec.Command("sh", args...).CombinedOutput(); err != nil {
				t.Fatalf("template: %v\n%s", err, out)
			}
			read := func(p string) string { b, _ := os.ReadFile(filepath.Join(rootfs, p)); return string(b) }
			if read("etc/hostname") != tc.name+"\n" || read("etc/hosts") != "127.0.1.1 "+tc.name+"\n" || read("etc/motd") != "LXC_NAME stays\n" {
				t.Fatalf("hostname %q, hosts %q, motd %q: want the name in the listed files only", read("etc/hostname"), read("etc/hosts"), read("etc/motd"))
			}
			if _, err := os.Stat(filepath.Join(rootfs, "dev/pts")); err != nil {
				t.Fatal("no dev/pts")
			}
			_, err := os.Stat(filepath.Join(rootfs, "dev/marker"))
			if tc.mapped != os.IsNotExist(err) {
				t.Fatalf("dev/marker unpacked: %v; want it left out exactly with an id map", err == nil)
			}
			if os.Geteuid() == 0 {
				st, _ := os.Stat(filepath.Join(rootfs, "etc/hostname"))
				if s := st.Sys().(*syscall.Stat_t); s.Uid != 1234 || s.Gid != 1234 {
					t.Fatalf("etc/hostname owned by %d:%d, want the image's numeric 1234:1234", s.Uid, s.Gid)
				}
			}
			b, _ := os.ReadFile(filepath.Join(path, "config"))
			cfg := string(b)
			include := "lxc.include = /usr/share/lxc/config/debian.common.conf\n"
			userns := "lxc.include = /usr/share/lxc/config/debian.userns.conf\n"
			i, j := strings.Index(cfg, include), strings.Index(cfg, own)
			if i < 0 || j < i || !strings.HasSuffix(cfg, "lxc.uts.name = "+tc.name+"\n") || strings.Contains(cfg, userns) != tc.mapped {
				t.Fatalf("config:\n%s\nwant the distribution's lines (userns.conf exactly with an id map), then lxc-create's, then lxc.uts.name", cfg)
			}
		})
	}
}

// TestImageTemplateRefusesWhatItCannotDo: a missing argument or an unknown one is named, and
// nothing is unpacked.
func TestImageTemplateRefusesWhatItCannotDo(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, ImageTemplateName)
	os.WriteFile(tmpl, []byte(ImageTemplate), 0o755)
	for args, want := range map[string]string{
		"--name c --path " + dir + " --rootfs " + dir + " --metadata m":                    "--fstree is missing",
		"--name c --path " + dir + " --rootfs " + dir + " --metadata m --fstree f --bad x": "unknown argument --bad",
		"--name=c --path=" + dir + " --rootfs=" + dir + " --metadata":                      "--metadata needs a value",
	} {
		out, err := exec.Command("sh", append([]string{tmpl}, strings.Fields(args)...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("%s: %v %s, want %q", args, err, out, want)
		}
	}
}
