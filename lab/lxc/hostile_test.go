package lxc

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/faulttest"
)

// hostileTar is a tar of raw headers (names as given: "../x", "/x", links, device nodes),
// compressed by the command given.
func hostileTar(t *testing.T, hs []tar.Header, body map[string]string, compress ...string) []byte {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range hs {
		h.Size = int64(len(body[h.Name]))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body[h.Name]))
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

// TestFaultHostileImageContained runs labctl's image template (what lxc-create runs in the
// guest, as root for a privileged container) on an image whose rootfs tar holds "../" and
// absolute members, a symlink out of the rootfs and a member written through it, and a device
// node, and whose metadata holds "../" members and a templates list naming files outside the
// rootfs: nothing outside the container's directory is created or changed.
func TestFaultHostileImageContained(t *testing.T) {
	faulttest.Count(t, "input", "hostile-image-archive")
	for _, tool := range []string{"sh", "tar", "zstd", "xz", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (`make deps` installs it)", tool)
		}
	}
	top := t.TempDir()
	dir := filepath.Join(top, "a", "b") // the "../" of every depth below lands in top
	path := filepath.Join(dir, "c")
	rootfs := filepath.Join(path, "rootfs")
	os.MkdirAll(rootfs, 0o755)
	os.WriteFile(filepath.Join(path, "config"), []byte("lxc.rootfs.path = dir:"+rootfs+"\n"), 0o644)
	victim := filepath.Join(top, "victim")
	os.WriteFile(victim, []byte("LXC_NAME of the host\n"), 0o644)
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	body := map[string]string{"./etc/hostname": "LXC_NAME\n", "./up/escaped-via-up": "x\n", "./abs/escaped-via-abs": "x\n"}
	hostile := []tar.Header{{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("./etc/hostname"),
		{Name: "./up", Typeflag: tar.TypeSymlink, Linkname: "../../../.."},
		{Name: "./abs", Typeflag: tar.TypeSymlink, Linkname: top},
		reg("./up/escaped-via-up"), reg("./abs/escaped-via-abs"),
		{Name: "./hard", Typeflag: tar.TypeLink, Linkname: victim}}
	for _, name := range []string{"../escaped-rel", "../../../escaped-rel3", "/" + filepath.Join(top, "escaped-abs"), "./etc/../../escaped-mid"} {
		body[name] = "written by the image\n"
		hostile = append(hostile, reg(name))
	}
	// A rootfs an image may hold: links that lead out of it (resolved in the container, not
	// here), a device node (mknod is refused in a container with an id map).
	clean := append(hostile[:4:4], tar.Header{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		tar.Header{Name: "./dev/mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666})
	fstree := filepath.Join(top, "rootfs.tar.zst")
	tmpl := filepath.Join(top, ImageTemplateName)
	os.WriteFile(tmpl, []byte(ImageTemplate), 0o755)
	meta := filepath.Join(top, "meta.tar.xz")
	run := func(rootHs, metaHs []tar.Header, metaBody map[string]string) error {
		os.RemoveAll(rootfs)
		os.MkdirAll(rootfs, 0o755)
		os.WriteFile(fstree, hostileTar(t, rootHs, body, "zstd", "-q", "-c"), 0o644)
		os.WriteFile(meta, hostileTar(t, metaHs, metaBody, "xz", "-c"), 0o644)
		out, err := exec.Command("sh", tmpl, "--metadata", meta, "--fstree", fstree, "--name=c", "--path="+path, "--rootfs="+rootfs).CombinedOutput()
		t.Logf("the template said (%v):\n%s", err, out)
		return err
	}
	cleanMeta := []tar.Header{reg("./config")}
	config := map[string]string{"./config": ImageMeta["config"]}
	// Metadata with a "../" member: GNU tar refuses it, and the template fails.
	if err := run(clean, append(cleanMeta, reg("../escaped-meta")), map[string]string{"./config": ImageMeta["config"], "../escaped-meta": "x\n"}); err == nil {
		t.Error("metadata with a ../ member was unpacked")
	}
	// A rootfs with "../", absolute and through-a-link members: refused, the template fails.
	if err := run(hostile, cleanMeta, config); err == nil {
		t.Error("a rootfs with members outside it was unpacked")
	}
	// A rootfs that may be, and a templates list naming files outside it: those are skipped.
	list := "etc/hostname\n../../../../victim\n" + victim + "\n../../../victim\nup/victim\nabs/victim\n"
	if err := run(clean, append(cleanMeta, reg("./templates")), map[string]string{"./config": ImageMeta["config"], "./templates": list}); err != nil {
		t.Errorf("the template failed on an image it can make: %v", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "LXC_NAME of the host\n" {
		t.Errorf("a file outside the rootfs was changed: %s is %q", victim, data)
	}
	filepath.Walk(top, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(info.Name(), "escaped") && !strings.HasPrefix(p, path+string(filepath.Separator)) {
			t.Errorf("the image wrote %s, outside the container's directory %s", p, path)
		}
		return nil
	})
	if data, _ := os.ReadFile(filepath.Join(rootfs, "etc/hostname")); string(data) != "c\n" {
		t.Errorf("the image's own files were not made: etc/hostname is %q", data)
	}
}
