package lab

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
)

// Inventory is what exists under a lab's names in the provider: the domain of the lab's name
// (UUID "" when there is none) with its disks' paths, and the pool volumes named after the lab.
type Inventory struct {
	Domain  string
	UUID    string
	Disks   []string
	Volumes []host.Volume
}

// VolumeNames lists the names of the inventory's volumes.
func (inv Inventory) VolumeNames() []string {
	var names []string
	for _, v := range inv.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// claim is an inventory split into what is the lab's own and what is not.
type claim struct {
	// own is the lab's: the domain (UUID set) when it is the lab's, and the lab's volumes.
	own Inventory
	// foreignDomain says why the domain of the lab's name is not the lab's ("" when it is, or
	// when there is none).
	foreignDomain string
	// foreignVolumes are volumes named after the lab that it did not create.
	foreignVolumes []string
}

// claimOf splits inv by ownership. The domain is the lab's when its UUID is the one state.json
// records, or the one Vagrant tracks in the lab's own directory (vid); a volume is the lab's
// when state.json records it, or it is a disk of the lab's domain. Nothing else is, whatever
// its name: another checkout's lab of the same name, or a VM made by hand.
func claimOf(inv Inventory, st State, vid string) claim {
	c := claim{own: Inventory{Domain: inv.Domain}}
	ours := inv.UUID != "" && (inv.UUID == st.DomainUUID || inv.UUID == vid)
	if ours {
		c.own.UUID, c.own.Disks = inv.UUID, inv.Disks
	} else if inv.UUID != "" {
		recorded := st.DomainUUID
		if recorded == "" {
			recorded = "none"
		}
		tracked := vid
		if tracked == "" {
			tracked = "none"
		}
		c.foreignDomain = fmt.Sprintf("libvirt domain %s (UUID %s) is not this lab's: this lab recorded UUID %s and Vagrant tracks %s for it", inv.Domain, inv.UUID, recorded, tracked)
	}
	for _, v := range inv.Volumes {
		if slices.Contains(st.Volumes, v.Name) || (ours && slices.Contains(inv.Disks, v.Path)) {
			c.own.Volumes = append(c.own.Volumes, v)
		} else {
			c.foreignVolumes = append(c.foreignVolumes, v.Name)
		}
	}
	return c
}

// refuseForeign is the error for a domain of the lab's name that is not the lab's.
func (l *Lab) refuseForeign(c claim, verb string) error {
	return fmt.Errorf("%s (another checkout's lab of the same name, or a VM made by hand), so `labctl %s` changes nothing: give this lab another name in lab.yaml, or, if you know that VM is unused, remove it yourself (`virsh dominfo %s` first)", c.foreignDomain, verb, c.own.Domain)
}

// vagrantID is the machine id Vagrant keeps for the lab's VM in tmp/<lab>/.vagrant
// (vagrant-libvirt: the domain's UUID); "" when Vagrant tracks none.
func (l *Lab) vagrantID(provider string) string {
	data, err := os.ReadFile(l.Path(labdir.VagrantDir, "machines", "default", provider, "id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
