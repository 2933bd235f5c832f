// Package labdir names the files of a lab's directory, tmp/<lab>/, in one place: the lab
// package owns that directory, and whatever else must name one of its files (the renderer's
// output, the benchmark, the e2e suite) takes the name from here.
package labdir

import "path/filepath"

// Tmp is the directory, beside lab.yaml, that holds every lab's directory.
const Tmp = "tmp"

// The files and directories of tmp/<lab>/.
const (
	// Vagrantfile is the lab's rendered Vagrantfile (Vagrant runs in the lab directory).
	Vagrantfile = "Vagrantfile"
	// VagrantDir is Vagrant's own record of the lab's machine (.vagrant/machines/default/...).
	VagrantDir = ".vagrant"
	// State is what labctl remembers about the lab between commands (lab.State).
	State = "state.json"
	// StateLock serialises changes of State between processes (a verb and the lab's agent).
	StateLock = "state.lock"
	// KnownHosts pins the VM's SSH host key.
	KnownHosts = "known_hosts"
	// Lock is held by a verb that changes the lab (up, provision, destroy, halt, ...).
	Lock = "lock"
	// AgentSock is where the lab's host agent listens; AgentLock keeps it to one.
	AgentSock = "agent.sock"
	AgentLock = "agent.lock"
	// Logs holds the lab's logs; Reports the e2e suite's reports.
	Logs    = "logs"
	Reports = "reports"
	// Guest is where `labctl render` puts the guest files under its output directory.
	Guest = "guest"
)

// The logs under tmp/<lab>/logs/.
const (
	VagrantLog   = "vagrant.log"
	ProvisionLog = "provision.log"
	AgentLog     = "agent.log"
	// ImagesLog is the output of the container images built beside the box and the boot.
	ImagesLog = "images.log"
	// LayerLog is what making the lab's provisioned layer ran and printed.
	LayerLog = "layer.log"
	// ConsoleLog is the guest's serial console since its last boot (kept by libvirt);
	// ConsoleBoot1 the console of a first boot that timed out.
	ConsoleLog   = "console.log"
	ConsoleBoot1 = "console-boot1.log"
)

// Of is the directory of lab name under root (where lab.yaml is): root/tmp/name.
func Of(root, name string) string { return filepath.Join(root, Tmp, name) }
