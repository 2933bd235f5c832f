//go:build vm

package provision

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
	"github.com/labctl/labctl/provision/remote"
)

// BenchmarkVMLatency measures, in one run against the running lab (LABCTL_BENCH_PRESET,
// default bookworm), the latency of one trivial command: warm over labctl's persistent
// connection, cold with a new labctl connection (handshake included), at each nesting level
// warm, and `vagrant ssh -c true`; it reports each and the ratios to the warm VM command.
// Run: go test -tags vm -run XXX -bench VMLatency -benchtime 1x ./provision/
func BenchmarkVMLatency(b *testing.B) {
	preset := os.Getenv("LABCTL_BENCH_PRESET")
	if preset == "" {
		preset = "bookworm"
	}
	s, err := spec.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	l, err := lab.Open("..", s)
	if err != nil {
		b.Fatal(err)
	}
	v := &vagrant.Driver{Dir: l.Dir}
	ctx := context.Background()
	comm, err := Connect(ctx, l, v, ConnectOptions{})
	if err != nil {
		b.Fatalf("%v (bring the lab up first: labctl up --preset %s)", err, preset)
	}
	defer comm.Close()
	vm := &remote.SSHVM{Conn: comm}
	f, err := GatherFacts(ctx, vm, s.User)
	if err != nil {
		b.Fatal(err)
	}
	ts := Targets(s, vm, f)
	const n = 5
	median := func(fn func()) time.Duration {
		var ds []time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			fn()
			ds = append(ds, time.Since(start))
		}
		for i := range ds {
			for j := i + 1; j < len(ds); j++ {
				if ds[j] < ds[i] {
					ds[i], ds[j] = ds[j], ds[i]
				}
			}
		}
		return ds[n/2]
	}
	must := func(t remote.Target) func() {
		return func() {
			if _, err := remote.Must(ctx, t, remote.Cmd{Line: "true"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	out, err := v.SSHConfig(ctx)
	if err != nil {
		b.Fatal(err)
	}
	entries, _ := vagrant.ParseSSHConfig(out)
	e := entries[0]
	for i := 0; i < b.N; i++ {
		warm := median(must(vm))
		box1 := median(must(ts["box1"]))
		n1 := median(must(ts["n1"]))
		cold := median(func() {
			c, err := remote.Dial(ctx, remote.SSHConfig{Host: e.HostName, Port: e.Port, User: e.User, IdentityFiles: e.IdentityFiles, KnownHosts: l.KnownHosts(), KeepAlive: -1})
			if err != nil {
				b.Fatal(err)
			}
			must(&remote.SSHVM{Conn: c})()
			c.Close()
		})
		vag := median(func() {
			cmd := exec.Command("vagrant", "ssh", "-c", "true")
			cmd.Env = append(os.Environ(), "VAGRANT_CWD="+l.Dir, "VAGRANT_HOME="+host.VagrantHome(), "VAGRANT_CHECKPOINT_DISABLE=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("vagrant ssh -c true: %v %s", err, out)
			}
		})
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(warm), "vm-warm-ms")
		b.ReportMetric(ms(box1), "box1-warm-ms")
		b.ReportMetric(ms(n1), "n1-warm-ms")
		b.ReportMetric(ms(cold), "vm-cold-ms")
		b.ReportMetric(ms(vag), "vagrant-ssh-ms")
		b.ReportMetric(float64(cold)/float64(warm), "cold/warm")
		b.ReportMetric(float64(vag)/float64(warm), "vagrant-ssh/warm")
	}
}
