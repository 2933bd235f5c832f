package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/lab/faulttest"
)

// TestFaultLibvirtdOnItsWayOutIsStartedAgain: libvirtd was stopped a moment before (the chaos
// soak's libvirtd-restart: its process takes seconds to exit), so it is still there when Start
// looks and then gone; Start starts it once it is gone instead of waiting 60 s for a daemon
// that will never answer. Fakes of pgrep, virsh and libvirtd (a test's own PATH): the dying
// daemon is seen twice, virsh answers once the new one started.
func TestFaultLibvirtdOnItsWayOutIsStartedAgain(t *testing.T) {
	faulttest.Count(t, "fault", "libvirtd-on-its-way-out")
	if os.Geteuid() != 0 {
		t.Skip("the system daemon is started by root only")
	}
	if kvmNodeUnusable() {
		t.Skip("this host starts libvirtd in a mount namespace of its own (an unusable /dev/kvm)")
	}
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	fakes := map[string]string{
		// the old daemon: seen by the first two looks, then gone
		"pgrep":    `[ "$2" = libvirtd ] || exit 0; n=$(cat "$D/looks" 2>/dev/null || echo 0); echo $((n+1)) > "$D/looks"; [ -e "$D/started" ] && exit 0; [ "$n" -lt 2 ]`,
		"libvirtd": `echo "$@" >> "$D/started"`,
		"virsh":    `[ -e "$D/started" ]`,
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("D", dir)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	seenByProcess.Delete("answers " + Libvirt{}.URI())
	var out strings.Builder
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := (Libvirt{}).Start(ctx, &out); err != nil {
		t.Fatalf("Start: %v (after %s)\n%s", err, time.Since(begin), out.String())
	}
	data, _ := os.ReadFile(started)
	if strings.TrimSpace(string(data)) != "-d" || !strings.Contains(out.String(), "host: started libvirtd") {
		t.Fatalf("libvirtd was not started once it was gone (started: %q):\n%s", data, out.String())
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("Start took %s: it waited for the old daemon", took)
	}
}
