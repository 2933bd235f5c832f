package host

import (
	"strings"
	"testing"
)

func TestQemuConfNoNamespaces(t *testing.T) {
	in := "#namespaces = [ \"mount\" ]\nuser = \"libvirt-qemu\"\n  namespaces = [ \"mount\" ]\nsecurity_driver = \"apparmor\""
	got := QemuConfNoNamespaces(in)
	want := "#namespaces = [ \"mount\" ]\nuser = \"libvirt-qemu\"\nsecurity_driver = \"apparmor\"\n# labctl: domains share this daemon's mount namespace, where /dev/kvm is masked\nnamespaces = []\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(got, "\nnamespaces") != 1 {
		t.Fatalf("one namespaces setting expected:\n%s", got)
	}
}
