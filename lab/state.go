package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
)

// State is what labctl remembers about a lab between commands (tmp/<lab>/state.json). The Lab
// owns it: read once when the lab is opened, changed only through the Lab's named methods
// below, each change written at once, whole.
type State struct {
	// SSHPort is the 127.0.0.1 port forwarded to the guest's sshd (libvirt).
	SSHPort int `json:"ssh_port,omitempty"`
	// Accel is the accelerator the VM was created with (kvm or tcg).
	Accel string `json:"accel,omitempty"`
	// Libvirt is the libvirt daemon the VM was created under (session or system): later
	// commands talk to that one, and refuse when lab.yaml or --libvirt now names the other.
	Libvirt string `json:"libvirt,omitempty"`
	// Box is the box the VM was created from, with the box's cache key.
	Box string `json:"box,omitempty"`
	// DomainUUID is the UUID of the libvirt domain this lab created: labctl destroys a domain
	// of the lab's name only when it has this UUID (or the one Vagrant tracks for the lab).
	DomainUUID string `json:"domain_uuid,omitempty"`
	// Volumes are the pool volumes this lab created; labctl deletes no other.
	Volumes []string `json:"volumes,omitempty"`
	// SSH is the VM's SSH endpoint as `vagrant ssh-config` told it once: later commands reach
	// the VM without asking Vagrant again (destroy forgets it with the state).
	SSH *SSHEndpoint `json:"ssh,omitempty"`
	// Ready is the snapshot taken after the first green provision (`labctl reset`).
	Ready *Ready `json:"ready,omitempty"`
	// Layer is the provisioned layer the VM was created from (nil: provisioned itself).
	Layer *LayerUse `json:"layer,omitempty"`
}

// LayerUse is the layer a lab's VM boots from: its key, its Vagrant box, and the lab's data
// disk labctl made as an overlay of the layer's.
type LayerUse struct {
	Key  string `json:"key"`
	Box  string `json:"box"`
	Disk string `json:"disk"`
}

// SSHEndpoint is where and as whom the VM's sshd is reached.
type SSHEndpoint struct {
	Host          string   `json:"host"`
	Port          int      `json:"port"`
	User          string   `json:"user"`
	IdentityFiles []string `json:"identity_files"`
}

// readState reads a state file (never through a symlink); a missing file is an empty state.
func readState(p string) (State, error) {
	var st State
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return st, fmt.Errorf("%s is a symlink: labctl does not follow it (it could point anywhere); remove it (`labctl destroy` first if a VM exists)", p)
	}
	if err != nil {
		return st, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s is corrupt: %w (delete it; `labctl destroy` first if a VM exists)", p, err)
	}
	return st, nil
}

// State is the lab's state as this process last read or wrote it (a copy).
func (l *Lab) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Volumes = slices.Clone(st.Volumes)
	return st
}

// update is the one writer of state.json: under the state's lock (the lab's agent, another
// process, writes it too), it reads the file again, applies change and writes it whole
// (temp file, fsync, rename), so that no process undoes another's change.
func (l *Lab) update(change func(*State)) error {
	lk, err := host.WaitLock(context.Background(), l.Path(labdir.StateLock), "state", nil)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	st, err := readState(l.Path(labdir.State))
	if err != nil {
		return err
	}
	change(&st)
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := host.WriteFileAtomic(l.Path(labdir.State), append(data, '\n'), 0o644); err != nil {
		return err
	}
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	return nil
}

// recordHost keeps the host values the lab's VM is created with: its libvirt daemon (""
// for none), the SSH port forward, the accelerator.
func (l *Lab) recordHost(daemon string, port int, accel string) error {
	return l.update(func(st *State) { st.Libvirt, st.SSHPort, st.Accel = daemon, port, accel })
}

// recordPort keeps another SSH port for the lab's VM (the one it had is taken).
func (l *Lab) recordPort(port int) error { return l.update(func(st *State) { st.SSHPort = port }) }

// recordDomain keeps the domain the lab created (or owns), from which box (name@key; ""
// keeps the recorded one), and volumes of its own.
func (l *Lab) recordDomain(uuid, box string, volumes []string) error {
	return l.update(func(st *State) {
		if uuid != "" {
			st.DomainUUID = uuid
		}
		if box != "" {
			st.Box = box
		}
		st.Volumes = mergeNames(st.Volumes, volumes)
	})
}

// rememberSSH keeps the VM's SSH endpoint.
func (l *Lab) rememberSSH(e SSHEndpoint) error { return l.update(func(st *State) { st.SSH = &e }) }

// recordLayer keeps the layer the lab's new VM boots from, and the data disk made for it as
// a volume of the lab's own.
func (l *Lab) recordLayer(u LayerUse) error {
	return l.update(func(st *State) { st.Layer = &u; st.Volumes = mergeNames(st.Volumes, []string{u.Disk}) })
}

// recordReady keeps (r) or drops (nil) the ready snapshot's record.
func (l *Lab) recordReady(r *Ready) error { return l.update(func(st *State) { st.Ready = r }) }

// forget removes the state and the pinned host key, once the lab's VM is gone; it returns
// what it removed.
func (l *Lab) forget() ([]string, error) {
	var gone []string
	for _, f := range []string{l.KnownHosts(), l.Path(labdir.State)} {
		if err := os.Remove(f); err == nil {
			gone = append(gone, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return gone, err
		}
	}
	l.mu.Lock()
	l.st = State{}
	l.mu.Unlock()
	return gone, nil
}

func mergeNames(a, b []string) []string {
	for _, n := range b {
		if !slices.Contains(a, n) {
			a = append(a, n)
		}
	}
	return a
}
