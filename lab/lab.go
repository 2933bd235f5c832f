// Package lab is one lab on the host: its spec, its directory tmp/<name>/ with the state
// labctl keeps between commands, and its lifecycle (boot, destroy, validate) through the
// Vagrant driver and a Provider. It joins the packages below it; the guest is provision's.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/lab/vagrant"
)

// Lab is one lab on disk: its spec and its state directory tmp/<name>/.
type Lab struct {
	Spec *spec.Spec
	// Dir is tmp/<name>, absolute.
	Dir string
}

// State is what labctl remembers about a lab between commands (tmp/<lab>/state.json).
type State struct {
	// SSHPort is the 127.0.0.1 port forwarded to the guest's sshd (libvirt).
	SSHPort int `json:"ssh_port,omitempty"`
	// Accel is the accelerator the VM was created with (kvm or tcg).
	Accel string `json:"accel,omitempty"`
	// Box is the box the VM was created from, with the box's cache key.
	Box string `json:"box,omitempty"`
}

// Open returns the lab of spec s under root/tmp/<name>, creating the directory.
func Open(root string, s *spec.Spec) (*Lab, error) {
	abs, err := filepath.Abs(filepath.Join(root, "tmp", s.Name))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create lab directory: %w", err)
	}
	return &Lab{Spec: s, Dir: abs}, nil
}

// Path joins parts under the lab directory.
func (l *Lab) Path(parts ...string) string {
	return filepath.Join(append([]string{l.Dir}, parts...)...)
}

// KnownHosts is the file where the VM's host key is pinned.
func (l *Lab) KnownHosts() string { return l.Path("known_hosts") }

// LogDir is tmp/<lab>/logs.
func (l *Lab) LogDir() string { return l.Path("logs") }

// ReportDir is tmp/<lab>/reports, where the e2e suite writes its JUnit and JSON reports.
func (l *Lab) ReportDir() string { return l.Path("reports") }

// Vagrant returns the lab's Vagrant driver, logging to tmp/<lab>/logs/vagrant.log, with
// Vagrant's "==>" lines on progress (nil: none); close it with the returned function.
func (l *Lab) Vagrant(progress io.Writer) (*vagrant.Driver, func() error, error) {
	return vagrant.New(l.Dir, l.Path("logs", "vagrant.log"), progress)
}

// LoadState reads state.json; a missing file is an empty state.
func (l *Lab) LoadState() (State, error) {
	var st State
	data, err := os.ReadFile(l.Path("state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s is corrupt: %w (delete it; `labctl destroy` first if a VM exists)", l.Path("state.json"), err)
	}
	return st, nil
}

// SaveState writes state.json, whole or not at all.
func (l *Lab) SaveState(st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(l.Path("state.json"), append(data, '\n'), 0o644)
}

// writeAtomic writes a file through a temporary file beside it, synced and renamed over it:
// a reader sees the old content or the new, never a part.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
