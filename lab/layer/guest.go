package layer

import (
	"encoding/json"

	"github.com/labctl/labctl/lab/spec"
)

// NotGuest names the spec's fields that never reach the guest's disks: the provider and its
// daemon, the VM's size and accelerator, and the boot timeout. Every other field shapes the
// layer (TestKeyPerInput changes each and checks the key); the lab's name too: the guest
// files labctl renders name it.
var NotGuest = []string{"Provider", "CPUs", "Memory", "Accelerator", "BootTimeout", "Libvirt"}

// GuestOf is the spec as provisioning reads it: the fields of NotGuest cleared.
func GuestOf(s spec.Spec) json.RawMessage {
	s.Provider, s.Accelerator, s.Libvirt = "", "", ""
	s.CPUs, s.Memory, s.BootTimeout = 0, 0, 0
	data, _ := json.Marshal(s)
	return data
}
