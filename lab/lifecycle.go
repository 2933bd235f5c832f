package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/labctl/labctl/lab/render"
	"github.com/labctl/labctl/lab/vagrant"
)

// VagrantInputs resolves what the lab's Vagrantfile needs from the host (the provider says
// what), with a one-line notice when a choice was made for the user.
func (l *Lab) VagrantInputs() (render.VagrantInputs, string, error) {
	p, err := ProviderOf(l.Spec)
	if err != nil {
		return render.VagrantInputs{}, "", err
	}
	return p.Inputs(l)
}

// WriteVagrantfile renders the lab's Vagrantfile into its directory; it returns the notice of
// VagrantInputs.
func (l *Lab) WriteVagrantfile() (string, error) {
	vin, notice, err := l.VagrantInputs()
	if err != nil {
		return "", err
	}
	vf, err := render.Vagrantfile(l.Spec, vin)
	if err != nil {
		return "", err
	}
	return notice, writeAtomic(l.Path("Vagrantfile"), vf, 0o644)
}

// VMState asks Vagrant for the state of the lab's VM: not_created when the lab has no
// Vagrantfile yet. An error means Vagrant could not tell, and says nothing about the VM.
func (l *Lab) VMState(ctx context.Context, v *vagrant.Driver) (string, error) {
	if _, err := os.Stat(l.Path("Vagrantfile")); errors.Is(err, os.ErrNotExist) {
		return "not_created", nil
	} else if err != nil {
		return "", err
	}
	return v.Status(ctx)
}

// Boot prepares the host (provider, box) and brings the VM up with Vagrant. Progress goes to
// out. It returns the VM's state before the boot (not_created: this run created the VM) and
// how long each phase took. It never counts a VM as created when it could not read its state.
func Boot(ctx context.Context, l *Lab, v *vagrant.Driver, out io.Writer) (before string, phases map[string]time.Duration, err error) {
	phases = map[string]time.Duration{}
	start := time.Now()
	p, err := ProviderOf(l.Spec)
	if err != nil {
		return "", phases, err
	}
	if err := p.Prepare(ctx, out); err != nil {
		return "", phases, err
	}
	before, err = l.VMState(ctx, v)
	if err != nil {
		return "", phases, fmt.Errorf("cannot tell whether the lab's VM exists, so nothing was changed: %w", err)
	}
	if before == "not_created" {
		if err := p.CheckLeftover(ctx, l, out); err != nil {
			return before, phases, err
		}
	}
	notice, err := l.WriteVagrantfile()
	if err != nil {
		return before, phases, err
	}
	if notice != "" {
		fmt.Fprintln(out, notice)
	}
	phases["host"] = time.Since(start)
	start = time.Now()
	boxKey, err := EnsureBox(ctx, l.Spec, v, out)
	if err != nil {
		return before, phases, err
	}
	phases["box"] = time.Since(start)
	start = time.Now()
	fmt.Fprintf(out, "vm: vagrant up (%s, was %s)\n", p.Name(), before)
	if err := v.Up(ctx, p.Name()); err != nil {
		return before, phases, err
	}
	phases["vagrant up"] = time.Since(start)
	st, err := l.LoadState()
	if err != nil {
		return before, phases, err
	}
	if before == "not_created" {
		st.Box = l.Spec.BoxName() + "@" + boxKey
	}
	return before, phases, l.SaveState(st)
}

// Destroy removes the lab's VM, its disks (Vagrant's and any the provider finds left by a
// failed run), the pinned host key and the state. It returns what it removed.
func Destroy(ctx context.Context, l *Lab, v *vagrant.Driver) ([]string, error) {
	var gone []string
	p, err := ProviderOf(l.Spec)
	if err != nil {
		return gone, err
	}
	if _, err := os.Stat(l.Path("Vagrantfile")); err == nil {
		if err := p.Prepare(ctx, io.Discard); err != nil {
			return gone, err
		}
		if err := v.Destroy(ctx); err != nil {
			return gone, err
		}
		gone = append(gone, "VM")
	} else if !errors.Is(err, os.ErrNotExist) {
		return gone, err
	}
	left, err := p.RemoveLeftovers(ctx, l)
	gone = append(gone, left...)
	if err != nil {
		return gone, err
	}
	for _, f := range []string{l.KnownHosts(), l.Path("state.json")} {
		if err := os.Remove(f); err == nil {
			gone = append(gone, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return gone, err
		}
	}
	return gone, nil
}
