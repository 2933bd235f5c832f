package provision

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/lab/render"

	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// fakeProvisioner is a fresh provisioner (a new labctl process) for the bookworm lab on g.
func fakeProvisioner(t *testing.T, conn *fakeConn) *Provisioner {
	t.Helper()
	s, err := spec.Preset("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	vm := &remote.SSHVM{Conn: conn}
	f, err := GatherFacts(context.Background(), vm, s.User)
	if err != nil {
		t.Fatal(err)
	}
	return &Provisioner{Spec: s, VM: vm, Comm: conn, Facts: f, Opts: Options{Image: fakeImage, Out: io.Discard, Log: io.Discard}}
}

func runAll(t *testing.T, g *fakeGuest) (Summary, string, error) {
	t.Helper()
	p := fakeProvisioner(t, &fakeConn{g: g})
	steps, err := p.Steps()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum, err := RunSteps(context.Background(), steps, &out, false)
	return sum, out.String(), err
}

// TestFakeGuestProvisions: the model takes the bookworm lab from a fresh box to done, and a
// second run changes nothing (the model is faithful enough to converge at all).
func TestFakeGuestProvisions(t *testing.T) {
	g := newFakeGuest()
	sum, out, err := runAll(t, g)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if sum.Changed == 0 {
		t.Fatalf("a fresh guest needed no change:\n%s", out)
	}
	if _, ok := g.file("", render.UserManagerDropIn); !ok || g.reloads != 1 {
		t.Fatalf("the user manager's drop-in (written %v) was not loaded by one daemon-reload (%d)", ok, g.reloads)
	}
	if _, ok := g.file("", render.SSHKeepalive); !ok || g.sshdReload != 1 {
		t.Fatalf("sshd's keepalive (written %v) was not loaded by one checked reload (%d)", ok, g.sshdReload)
	}
	sum, out, err = runAll(t, g)
	if err != nil || sum.Changed != 0 || g.reloads != 1 || g.sshdReload != 1 {
		t.Fatalf("second run: %s %v, %d reloads, %d sshd reloads\n%s", sum, err, g.reloads, g.sshdReload, out)
	}
}

// TestFailedStartLeavesEvidence: a container that does not start is tried once more with
// LXC's trace log, and the lab's logs keep its debug log, the trace log and the VM kernel's
// AppArmor denials; the step still fails.
func TestFailedStartLeavesEvidence(t *testing.T) {
	g := newFakeGuest()
	g.denyStart = "box1"
	p := fakeProvisioner(t, &fakeConn{g: g})
	p.Opts.LogDir = t.TempDir()
	steps, err := p.Steps()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = RunSteps(context.Background(), steps, &out, false)
	if err == nil || !strings.Contains(err.Error(), `step "start box1" failed`) {
		t.Fatalf("want start box1 to fail: %v\n%s", err, out.String())
	}
	for name, want := range map[string]string{
		"box1-lxc-start.log":        "lxc-start debug log",
		"box1-lxc-start-trace.log":  "TRACE conf - userns_exec_mapped_root - Permission denied",
		"box1-apparmor-denials.txt": `apparmor="DENIED" operation="userns_create"`,
	} {
		data, err := os.ReadFile(filepath.Join(p.Opts.LogDir, name))
		if err != nil || !strings.Contains(string(data), want) {
			t.Errorf("%s: %q %v, want %q", name, data, err, want)
		}
	}
}

// TestFakeGuestProvisionsAhead: as the CLI runs it (checks ahead, box1's image uploaded while
// the steps before its creation run): a fresh guest converges, box1 is made from the image
// uploaded ahead, and a second run uploads nothing and changes nothing.
func TestFakeGuestProvisionsAhead(t *testing.T) {
	g := newFakeGuest()
	run := func() (Summary, string, error) {
		p := fakeProvisioner(t, &fakeConn{g: g})
		var out strings.Builder
		p.Opts.Out, p.Opts.Ahead = &out, DefaultAhead
		sum, err := p.Run(context.Background())
		return sum, out.String(), err
	}
	sum, out, err := run()
	if err != nil || sum.Changed == 0 || !strings.Contains(out, "box1's image was uploaded while the steps before ran") {
		t.Fatalf("first run: %s %v\n%s", sum, err, out)
	}
	uploads := len(g.uploaded)
	sum, out, err = run()
	if err != nil || sum.Changed != 0 || len(g.uploaded) != uploads || strings.Contains(out, "upload") {
		t.Fatalf("second run: %s %v, %d files uploaded before, %d now\n%s", sum, err, uploads, len(g.uploaded), out)
	}
}

// TestInterruptedAnywhereConverges interrupts every step's apply after each command it sends
// (the command not run, run whole, or cut off half-way where that leaves something behind),
// as Ctrl-C or a cut connection would, then runs the whole provisioning again in a new
// process: it must succeed, report the interrupted step changed (or ok when the cut apply had
// in fact finished), leave the guest exactly as a run that was never interrupted, and a third
// run must change nothing.
func TestInterruptedAnywhereConverges(t *testing.T) {
	clean := newFakeGuest()
	if _, out, err := runAll(t, clean); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := clean.snapshot()

	names := func() []string {
		p := fakeProvisioner(t, &fakeConn{g: newFakeGuest()})
		steps, err := p.Steps()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, st := range steps {
			out = append(out, st.Name)
		}
		return out
	}()
	points := 0
	for i, name := range names {
		for k := 1; ; k++ {
			reachedAny := false
			for _, mode := range []string{"before", "after", "partial"} {
				g := newFakeGuest()
				conn := &fakeConn{g: g}
				p := fakeProvisioner(t, conn)
				steps, _ := p.Steps()
				var out strings.Builder
				if _, err := RunSteps(context.Background(), steps[:i], &out, false); err != nil {
					t.Fatalf("steps before %q: %v\n%s", name, err, out.String())
				}
				done, _, err := steps[i].Check(context.Background())
				if err != nil {
					t.Fatalf("check %q: %v", name, err)
				}
				if done {
					break // nothing to apply: no interruption point
				}
				conn.armed = &cut{k: k, mode: mode}
				applyErr := steps[i].Apply(context.Background())
				if !conn.reached {
					if applyErr != nil && !conn.tripped {
						t.Fatalf("step %q failed on an uninterrupted apply: %v", name, applyErr)
					}
					continue
				}
				reachedAny = true
				points++
				where := fmt.Sprintf("step %q cut at command %d (%s)", name, k, mode)
				sum, out2, err := runAll(t, g)
				if err != nil {
					t.Errorf("%s: the next run failed: %v\n%s", where, err, out2)
					continue
				}
				if !strings.Contains(out2, "changed   "+name+" ") && !strings.Contains(out2, "ok        "+name+" ") {
					t.Errorf("%s: the next run does not report the step:\n%s", where, out2)
				}
				if got := g.snapshot(); got != want {
					t.Errorf("%s: the guest differs from one never interrupted:\n%s", where, diffLines(want, got))
					continue
				}
				if sum, out3, err := runAll(t, g); err != nil || sum.Changed != 0 {
					t.Errorf("%s: a third run: %s %v\n%s", where, sum, err, out3)
				}
				_ = sum
			}
			if !reachedAny {
				break
			}
		}
	}
	t.Logf("%d interruption points over %d steps, each converged", points, len(names))
	if points < len(names) {
		t.Errorf("only %d interruption points for %d steps", points, len(names))
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	in := func(l string, ls []string) bool {
		for _, x := range ls {
			if x == l {
				return true
			}
		}
		return false
	}
	for _, l := range al {
		if !in(l, bl) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !in(l, al) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPreflightRefusesConflicts: a subordinate range over an existing user's uid or another
// user's range, or a mount point outside /mnt, /srv, /data, /media that holds files, stop
// provisioning at preflight, before anything is changed.
func TestPreflightRefusesConflicts(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(g *fakeGuest, p *Provisioner)
		want string
	}{
		{"uid in the range", func(g *fakeGuest, p *Provisioner) { g.passwd += "svc:100500\n" }, "holds the id of the guest's user svc (100500)"},
		{"another user's range", func(g *fakeGuest, p *Provisioner) { g.files[":/etc/subgid"] += "ann:120000:65536\n" }, "overlaps user ann's subordinate range in /etc/subgid (120000-185535)"},
		{"a full mount point", func(g *fakeGuest, p *Provisioner) { g.mpState = "full"; p.Spec.Btrfs.MountPoint = "/labdisk" }, "btrfs.mount_point /labdisk exists in the guest and holds files"},
	} {
		g := newFakeGuest()
		p := fakeProvisioner(t, &fakeConn{g: g})
		c.set(g, p)
		before := g.snapshot()
		steps, err := p.Steps()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		_, err = RunSteps(context.Background(), steps, &out, false)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(out.String(), "failed    preflight") {
			t.Errorf("%s: want preflight to fail with %q, got %v\n%s", c.name, c.want, err, out.String())
		}
		if g.snapshot() != before {
			t.Errorf("%s: a refused lab changed the guest", c.name)
		}
	}
}
