package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// VagrantInputs resolves what the lab's Vagrantfile needs from the host: the accelerator (with
// a one-line notice when it was chosen automatically) and the SSH port, kept in the lab's state
// so that every rendering of a lab agrees.
func (l *Lab) VagrantInputs() (VagrantInputs, string, error) {
	vin := VagrantInputs{Pool: Pool}
	if l.Spec.ProviderFor() != "libvirt" {
		return vin, "", nil
	}
	st, err := l.LoadState()
	if err != nil {
		return vin, "", err
	}
	accel, notice, err := Accel(l.Spec.Accelerator)
	if err != nil {
		return vin, "", err
	}
	if st.SSHPort == 0 {
		if st.SSHPort, err = FreePort(); err != nil {
			return vin, "", err
		}
	}
	st.Accel = accel
	if err := l.SaveState(st); err != nil {
		return vin, "", err
	}
	vin.SSHPort, vin.Accel = st.SSHPort, accel
	return vin, notice, nil
}

// WriteVagrantfile renders the lab's Vagrantfile into its directory.
func (l *Lab) WriteVagrantfile() (string, error) {
	vin, notice, err := l.VagrantInputs()
	if err != nil {
		return "", err
	}
	vf, err := RenderVagrantfile(l.Spec, vin)
	if err != nil {
		return "", err
	}
	return notice, os.WriteFile(l.Path("Vagrantfile"), vf, 0o644)
}

// Boot prepares the host (libvirt, pool, box) and brings the VM up with Vagrant. Progress goes
// to out. It returns how long each phase took.
func Boot(ctx context.Context, l *Lab, v *Vagrant, out io.Writer) (map[string]time.Duration, error) {
	t := map[string]time.Duration{}
	start := time.Now()
	provider := l.Spec.ProviderFor()
	if provider == "virtualbox" {
		if _, err := lookPath("VBoxManage"); err != nil {
			return t, fmt.Errorf("provider virtualbox: VirtualBox is not installed on this host: use a libvirt preset (e.g. --preset %s), or install VirtualBox", DefaultPreset)
		}
	}
	if provider == "libvirt" {
		if err := EnsureLibvirt(ctx, out); err != nil {
			return t, err
		}
	}
	state, err := v.Status(ctx)
	if err != nil {
		state = "not_created"
	}
	if state == "not_created" && provider == "libvirt" {
		if dom := l.Spec.DomainName(); DomainExists(ctx, dom) {
			return t, fmt.Errorf("libvirt domain %s is left from an earlier run that Vagrant no longer tracks (or another checkout runs a lab of the same name): run `labctl destroy` (it removes it), then `labctl up` again", dom)
		}
		st, _ := l.LoadState()
		if st.SSHPort != 0 && !PortFree(st.SSHPort) {
			fmt.Fprintf(out, "host: port %d is taken, picking another\n", st.SSHPort)
			st.SSHPort = 0
			if err := l.SaveState(st); err != nil {
				return t, err
			}
		}
	}
	notice, err := l.WriteVagrantfile()
	if err != nil {
		return t, err
	}
	if notice != "" {
		fmt.Fprintln(out, notice)
	}
	t["host"] = time.Since(start)
	start = time.Now()
	boxKey, err := EnsureBox(ctx, l.Spec, v, out)
	if err != nil {
		return t, err
	}
	t["box"] = time.Since(start)
	start = time.Now()
	fmt.Fprintf(out, "vm: vagrant up (%s, was %s)\n", provider, state)
	if err := v.Up(ctx, provider); err != nil {
		return t, err
	}
	t["vagrant up"] = time.Since(start)
	st, _ := l.LoadState()
	if state == "not_created" {
		st.Box = l.Spec.BoxName() + "@" + boxKey
	}
	return t, l.SaveState(st)
}

// Destroy removes the lab's VM, its disks (Vagrant's and any volume left in labctl's pool by
// a failed run), the pinned host key and the state. It returns what it removed.
func Destroy(ctx context.Context, l *Lab, v *Vagrant) ([]string, error) {
	var gone []string
	if _, err := os.Stat(l.Path("Vagrantfile")); err == nil {
		if err := v.Destroy(ctx); err != nil {
			return gone, err
		}
		gone = append(gone, "VM")
	}
	if l.Spec.ProviderFor() == "libvirt" {
		// A domain Vagrant no longer knows (an interrupted run, a deleted tmp/): its name is in
		// labctl's namespace for this lab, so it is this lab's.
		if dom := l.Spec.DomainName(); DomainExists(ctx, dom) {
			virsh(ctx, "destroy", dom)
			if _, err := virsh(ctx, "undefine", dom); err != nil {
				return gone, err
			}
			gone = append(gone, "domain "+dom)
		}
		vols, err := DeleteVolumes(ctx, l.Spec.DomainPrefix())
		if err != nil {
			return gone, err
		}
		gone = append(gone, vols...)
	}
	for _, f := range []string{l.KnownHosts(), l.Path("state.json")} {
		if err := os.Remove(f); err == nil {
			gone = append(gone, f)
		}
	}
	return gone, nil
}
