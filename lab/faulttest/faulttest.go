// Package faulttest lets a fault test count itself in the fault table (`make test-faults`,
// scripts/faults.sh), and is the one home of the fake libvirt and Vagrant the fault tests run
// labctl against. It is for tests only; it imports no labctl package.
package faulttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Count makes the test count in the fault table: when it ends it logs
// "FAULT kind=input|fault result=rejected|survived|lost|skipped name=NAME". kind is input (a
// bad input, refused) or fault (a fault injected, survived); a failed test is lost.
func Count(t *testing.T, kind, name string) {
	t.Helper()
	t.Cleanup(func() {
		result := map[string]string{"input": "rejected", "fault": "survived"}[kind]
		switch {
		case t.Failed():
			result = "lost"
		case t.Skipped():
			result = "skipped"
		}
		t.Logf("FAULT kind=%s result=%s name=%s", kind, result, name)
	})
}

// Libvirt is the fake libvirt and Vagrant of every fault test (the scripts in testdata/fakebin/): a
// libvirt of the test's own in Dir (domains/, volumes/; a file fail-virsh-CMD makes that virsh
// command fail, hang-vagrant-up makes `vagrant up` hang, ...), every call of either recorded
// in Calls. Env puts the fakes first on PATH, with a cache of the test's own.
type Libvirt struct {
	Dir, Calls string
	Env        []string
}

// NewLibvirt makes a fake libvirt in a directory of the test's own and checks that its virsh
// answers (never a real one).
func NewLibvirt(t *testing.T) *Libvirt {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	fakebin := filepath.Join(filepath.Dir(here), "testdata", "fakebin")
	base := t.TempDir()
	f := &Libvirt{Dir: filepath.Join(base, "libvirt"), Calls: filepath.Join(base, "calls")}
	for _, d := range []string{"domains", "volumes"} {
		if err := os.MkdirAll(filepath.Join(f.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.Env = append(os.Environ(), "PATH="+fakebin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_LIBVIRT="+f.Dir, "FAKE_LOG="+f.Calls, "LABCTL_CACHE="+filepath.Join(base, "cache"))
	probe := exec.Command("sh", "-c", "virsh -c qemu:///system version")
	probe.Env = f.Env
	if out, err := probe.CombinedOutput(); err != nil || !strings.Contains(string(out), "(fake)") || !strings.Contains(f.Log(), "virsh -c qemu:///system version") {
		t.Fatalf("the fake virsh does not answer (%v): %s", err, out)
	}
	os.Remove(f.Calls)
	return f
}

// Setenv puts the fakes in this process's environment for the rest of the test.
func (f *Libvirt) Setenv(t *testing.T) {
	t.Helper()
	for _, kv := range f.Env[len(f.Env)-4:] {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Log is every call of the fakes so far, a line each.
func (f *Libvirt) Log() string {
	data, _ := os.ReadFile(f.Calls)
	return string(data)
}
