package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Pool is labctl's libvirt storage pool (boxes and data disks live there).
const Pool = "labctl"

// PoolDir is where the pool keeps its volumes; qemu (user libvirt-qemu) must reach it.
const PoolDir = "/var/lib/libvirt/images/labctl"

// EnsureLibvirt makes libvirt usable for labctl: starts the daemons when nothing runs them
// (StartLibvirt) and creates labctl's storage pool. Each action is reported on w.
func EnsureLibvirt(ctx context.Context, w io.Writer) error {
	if err := StartLibvirt(ctx, w); err != nil {
		return err
	}
	return ensurePool(ctx, w)
}

// StartLibvirt starts virtlogd and libvirtd when nothing runs them (no service manager here)
// and waits until libvirtd answers, and makes /dev/kvm group kvm 0660 as Debian's udev rule
// does: without it libvirt re-probes qemu on every call ("KVM was enabled when probing ...
// but it is not available now"), two minutes per domain definition.
func StartLibvirt(ctx context.Context, w io.Writer) error {
	fixKVMPermissions(w)
	if VirshOK(ctx) {
		return nil
	}
	for _, d := range []string{"virtlogd", "libvirtd"} {
		if exec.CommandContext(ctx, "pgrep", "-x", d).Run() == nil {
			continue
		}
		if _, err := exec.LookPath(d); err != nil {
			return fmt.Errorf("%s is not installed: run `make deps` (or apt-get install libvirt-daemon-system)", d)
		}
		if out, err := exec.CommandContext(ctx, d, "-d").CombinedOutput(); err != nil {
			return fmt.Errorf("start %s: %v: %s (see `labctl doctor`)", d, err, strings.TrimSpace(string(out)))
		}
		fmt.Fprintf(w, "host: started %s (no service manager runs it)\n", d)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !VirshOK(ctx) {
		if time.Now().After(deadline) {
			return errors.New("libvirtd does not answer `virsh version` after 60 s: check `libvirtd -d` by hand, then `labctl doctor`")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// fixKVMPermissions sets /dev/kvm to group kvm, mode 0660, when root finds it otherwise, and
// says on w what it did or why it could not.
func fixKVMPermissions(w io.Writer) {
	st, err := os.Stat("/dev/kvm")
	if err != nil || os.Geteuid() != 0 || st.Mode().Perm()&0o060 == 0o060 {
		return
	}
	if out, err := exec.Command("chgrp", "kvm", "/dev/kvm").CombinedOutput(); err != nil {
		fmt.Fprintf(w, "host: could not set /dev/kvm to group kvm (%v: %s): libvirt may re-probe qemu for minutes per domain definition\n", err, strings.TrimSpace(string(out)))
		return
	}
	if err := os.Chmod("/dev/kvm", 0o660); err != nil {
		fmt.Fprintf(w, "host: could not make /dev/kvm mode 0660 (%v): libvirt may re-probe qemu for minutes per domain definition\n", err)
		return
	}
	fmt.Fprintln(w, "host: /dev/kvm set to group kvm, mode 0660 (as Debian's udev rule does)")
}

// VirshOK reports whether libvirtd answers within 10 s.
func VirshOK(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return Command(ctx, "virsh", "-c", "qemu:///system", "version").Run() == nil
}

// Virsh runs virsh against the system libvirt and returns its output; a failure carries
// virsh's own message.
func Virsh(ctx context.Context, args ...string) (string, error) {
	out, err := Command(ctx, "virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("virsh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// PoolExists reports whether labctl's pool is defined; an error means libvirt did not answer.
func PoolExists(ctx context.Context) (bool, error) {
	out, err := Virsh(ctx, "pool-list", "--all", "--name")
	if err != nil {
		return false, err
	}
	for _, name := range strings.Fields(out) {
		if name == Pool {
			return true, nil
		}
	}
	return false, nil
}

func ensurePool(ctx context.Context, w io.Writer) error {
	exists, err := PoolExists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		if err := os.MkdirAll(PoolDir, 0o755); err != nil {
			return err
		}
		if _, err := Virsh(ctx, "pool-define-as", Pool, "dir", "--target", PoolDir); err != nil {
			return err
		}
		fmt.Fprintf(w, "host: defined libvirt storage pool %s at %s\n", Pool, PoolDir)
	}
	info, err := Virsh(ctx, "pool-info", Pool)
	if err != nil {
		return err
	}
	if !strings.Contains(info, "running") {
		if _, err := Virsh(ctx, "pool-start", Pool); err != nil {
			return err
		}
	}
	return nil
}

// DeleteVolumes removes the pool volumes whose names start with prefix (a lab's disks left
// behind by a failed run). It returns their names. No pool means no volumes.
func DeleteVolumes(ctx context.Context, prefix string) ([]string, error) {
	vols, err := Volumes(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, v := range vols {
		if strings.HasPrefix(v.Name, prefix) {
			if err := DeleteVolume(ctx, v.Name); err != nil {
				return gone, err
			}
			gone = append(gone, v.Name)
		}
	}
	return gone, nil
}

// DomainExists reports whether libvirt knows a domain by that name; an error means libvirt
// did not answer (and says nothing about the domain).
func DomainExists(ctx context.Context, name string) (bool, error) {
	doms, err := Domains(ctx)
	return slices.Contains(doms, name), err
}

// Domains lists the names of every libvirt domain, running or not.
func Domains(ctx context.Context) ([]string, error) {
	out, err := Virsh(ctx, "list", "--all", "--name")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// LabctlDomain returns a libvirt domain of some labctl lab ("" when there is none): a box's
// copy in the pool may back it.
func LabctlDomain(ctx context.Context) (string, error) {
	doms, err := Domains(ctx)
	if err != nil {
		return "", err
	}
	if i := slices.IndexFunc(doms, func(d string) bool { return strings.HasPrefix(d, "labctl-") }); i >= 0 {
		return doms[i], nil
	}
	return "", nil
}
