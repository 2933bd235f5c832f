package layer

import (
	"encoding/json"

	"github.com/labctl/labctl/lab/spec"
)

// NotGuest names the spec's fields that never reach the guest's disks: the lab's name (its
// host-side directory and domain only; the rendered files do not name it), the provider and
// its daemon, the VM's size and accelerator, and the boot timeout. Every other field shapes the
// layer (TestKeyPerInput changes each and checks the key), so labs of one spec under other
// names share a layer.
var NotGuest = []string{"Name", "Provider", "CPUs", "Memory", "Accelerator", "BootTimeout", "Libvirt"}

// GuestOf is the spec as provisioning reads it: the fields of NotGuest cleared.
func GuestOf(s spec.Spec) json.RawMessage {
	s.Name, s.Provider, s.Accelerator, s.Libvirt = "", "", "", ""
	s.CPUs, s.Memory, s.BootTimeout = 0, 0, 0
	data, _ := json.Marshal(s)
	return data
}
