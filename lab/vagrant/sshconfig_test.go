package vagrant

import (
	"os"
	"strings"
	"testing"
)

func TestParseSSHConfig(t *testing.T) {
	for _, c := range []struct {
		file string
		port int
		keys []string
	}{
		{"testdata/ssh-config-libvirt.txt", 2299, []string{"/var/cache/labctl/vagrant.d/boxes/labctl-VAGRANTSLASH-test/0/libvirt/vagrant_key"}},
		{"testdata/ssh-config-virtualbox.txt", 2222, []string{"/home/ann/my labs/trusty/.vagrant/machines/default/virtualbox/private_key", "/home/ann/.vagrant.d/insecure_private_key"}},
	} {
		data, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		es, err := ParseSSHConfig(string(data))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		e := es[0]
		if e.Host != "default" || e.HostName != "127.0.0.1" || e.User != "vagrant" || e.Port != c.port {
			t.Errorf("%s: parsed %+v", c.file, e)
		}
		if strings.Join(e.IdentityFiles, "|") != strings.Join(c.keys, "|") {
			t.Errorf("%s: identity files %q, want %q", c.file, e.IdentityFiles, c.keys)
		}
	}
	for _, bad := range []string{"", "HostName x\n", "Host a\n  Port nine\n", "Host a\n  HostName h\n", `Host a` + "\n" + `  IdentityFile "unterminated` + "\n"} {
		if _, err := ParseSSHConfig(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
