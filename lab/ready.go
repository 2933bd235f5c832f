package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/labctl/labctl/lab/host"
)

// ReadySnapshot is the libvirt snapshot labctl takes of a lab right after its first green
// provision: `labctl reset` brings the lab back to it in seconds.
const ReadySnapshot = "labctl-ready"

// Ready is what state.json says of the ready snapshot.
type Ready struct {
	// SpecSum is the sha256 of the spec the snapshot's lab was provisioned from, and of the
	// labctl that provisioned it (Lab.SpecSum).
	SpecSum string    `json:"spec_sum"`
	Taken   time.Time `json:"taken"`
}

// SpecSum is the sha256 of the lab's spec (as labctl read it, defaults resolved) and of the
// labctl binary: another labctl may render the lab differently.
func (l *Lab) SpecSum() string {
	data, _ := json.Marshal(l.Spec)
	h := sha256.New()
	h.Write(data)
	if _, version, err := host.Self(); err == nil {
		h.Write([]byte(version))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ErrNoReady is a lab without a ready snapshot.
var ErrNoReady = errors.New("no ready snapshot")

// readyDomain is the lab's state with the UUID of its libvirt domain, which snapshots need,
// and the daemon that knows it.
func (l *Lab) readyDomain() (State, host.Libvirt, error) {
	if l.Spec.ProviderFor() != "libvirt" {
		return State{}, host.Libvirt{}, fmt.Errorf("the ready snapshot is a libvirt snapshot: lab %s runs on %s (use `labctl snapshot`)", l.Spec.Name, l.Spec.ProviderFor())
	}
	st, err := l.LoadState()
	if err != nil {
		return st, host.Libvirt{}, err
	}
	virt, err := l.libvirtOf(st)
	if err != nil {
		return st, virt, err
	}
	if st.DomainUUID == "" {
		return st, virt, fmt.Errorf("lab %s has no VM that labctl recorded: `labctl up` first", l.Spec.Name)
	}
	return st, virt, nil
}

// TakeReady takes the ready snapshot of the running VM unless the lab has one; it reports
// whether it took one. The lab's agent must have ended (its processes would be in it).
func (l *Lab) TakeReady(ctx context.Context) (bool, error) {
	st, virt, err := l.readyDomain()
	if err != nil || st.Ready != nil {
		return false, err
	}
	if _, err := virt.Virsh(ctx, "snapshot-create-as", "--domain", st.DomainUUID, "--name", ReadySnapshot,
		"--description", "labctl: the lab right after its first green provision", "--atomic"); err != nil {
		return false, err
	}
	st.Ready = &Ready{SpecSum: l.SpecSum(), Taken: time.Now().UTC()}
	return true, l.SaveState(st)
}

// Reset reverts the running VM to the ready snapshot. It reports whether the spec changed
// since the snapshot was taken (the caller provisions then).
func (l *Lab) Reset(ctx context.Context) (specChanged bool, err error) {
	st, virt, err := l.readyDomain()
	if err != nil {
		return false, err
	}
	if st.Ready == nil {
		return false, fmt.Errorf("lab %s: %w (labctl takes it after the first green `labctl up`; run `labctl up`)", l.Spec.Name, ErrNoReady)
	}
	if _, err := virt.Virsh(ctx, "snapshot-revert", "--domain", st.DomainUUID, "--snapshotname", ReadySnapshot, "--running"); err != nil {
		return false, err
	}
	return st.Ready.SpecSum != l.SpecSum(), nil
}

// RetakeReady replaces the ready snapshot with one of the VM as it is now (after a reset
// provisioned it to a changed spec). The lab's agent must have ended.
func (l *Lab) RetakeReady(ctx context.Context) error {
	st, virt, err := l.readyDomain()
	if err != nil {
		return err
	}
	if st.Ready != nil {
		if _, err := virt.Virsh(ctx, "snapshot-delete", "--domain", st.DomainUUID, "--snapshotname", ReadySnapshot); err != nil {
			return err
		}
		st.Ready = nil
		if err := l.SaveState(st); err != nil {
			return err
		}
	}
	_, err = l.TakeReady(ctx)
	return err
}
