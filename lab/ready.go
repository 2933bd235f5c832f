package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/lab/action"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/provision"
)

// ReadySnapshot is the snapshot labctl takes of a lab right after its first green provision:
// `labctl reset` brings the lab back to it in seconds.
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

// snapshots are the provider's snapshots of the lab's VM, and its domain's UUID.
func (l *Lab) snapshots() (Snapshots, string, error) {
	p, err := l.provider()
	if err != nil {
		return nil, "", err
	}
	snaps := p.Snapshots()
	if snaps == nil {
		return nil, "", fmt.Errorf("lab %s runs on %s, of whose VMs labctl takes no ready snapshot (use `labctl snapshot`)", l.Spec.Name, p.Info().Name)
	}
	uuid := l.State().DomainUUID
	if uuid == "" {
		return nil, "", fmt.Errorf("lab %s has no VM that labctl recorded: `labctl up` first", l.Spec.Name)
	}
	return snaps, uuid, nil
}

// takeReady takes the ready snapshot of the running VM, once its agent has ended (none of
// its processes may be in the snapshot).
func (l *Lab) takeReady(ctx context.Context) error {
	snaps, uuid, err := l.snapshots()
	if err == nil {
		_, err = l.StopAgent(ctx)
	}
	if err == nil {
		err = snaps.Take(ctx, uuid, ReadySnapshot, "labctl: the lab right after its first green provision")
	}
	if err != nil {
		return fmt.Errorf("the lab is up, but its ready snapshot failed (so `labctl reset` cannot work): %w", err)
	}
	return l.recordReady(&Ready{SpecSum: l.SpecSum(), Taken: time.Now().UTC()})
}

// Reset reverts the running VM to the ready snapshot; when the spec (or labctl) changed since
// it was taken, it provisions the lab and takes the snapshot again, so that the next reset
// comes back to the lab of the new spec. It holds the lab's lock; progress goes to out.
func (l *Lab) Reset(ctx context.Context, out io.Writer, o ConnectOptions) error {
	start := time.Now()
	unlock, err := l.Lock("reset")
	if err != nil {
		return err
	}
	defer unlock()
	changed := false
	r := &action.Runner{Verb: "reset", Out: out}
	return r.Run(ctx, []action.Action{
		{Name: "agent", Do: func(ctx context.Context) (*action.Undo, error) { _, err := l.StopAgent(ctx); return nil, err }},
		{Name: "revert", Do: func(ctx context.Context) (*action.Undo, error) {
			if changed, err = l.revert(ctx); err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "lab %s: reverted to its ready snapshot in %s\n", l.Spec.Name, time.Since(start).Round(100*time.Millisecond))
			return nil, nil
		}},
		{Name: "provision", When: func() bool { return changed }, Log: l.Log(labdir.ProvisionLog), Do: func(ctx context.Context) (*action.Undo, error) {
			fmt.Fprintln(out, "the spec or labctl changed since the snapshot: provisioning")
			return nil, l.provisionNoLock(ctx, out, o)
		}},
		{Name: "snapshot", When: func() bool { return changed }, Do: func(ctx context.Context) (*action.Undo, error) {
			if err := l.retakeReady(ctx); err != nil {
				return nil, fmt.Errorf("the lab is provisioned, but its ready snapshot could not be taken again: %w", err)
			}
			fmt.Fprintf(out, "ready snapshot %s taken again\n", ReadySnapshot)
			return nil, nil
		}},
	})
}

// revert brings the VM back to the ready snapshot and reports whether the spec changed since.
func (l *Lab) revert(ctx context.Context) (bool, error) {
	snaps, uuid, err := l.snapshots()
	if err != nil {
		return false, err
	}
	ready := l.State().Ready
	if ready == nil {
		return false, fmt.Errorf("lab %s: %w (labctl takes it after the first green `labctl up`; run `labctl up`)", l.Spec.Name, ErrNoReady)
	}
	if err := snaps.Revert(ctx, uuid, ReadySnapshot); err != nil {
		return false, err
	}
	return ready.SpecSum != l.SpecSum(), nil
}

// provisionNoLock provisions the lab (its lock already held) and prints the steps on out.
func (l *Lab) provisionNoLock(ctx context.Context, out io.Writer, o ConnectOptions) error {
	return l.withProvisioner(ctx, o, provision.Options{Out: out, Ahead: provision.DefaultAhead}, func(_ *Conn, p *provision.Provisioner) error {
		_, err := p.Run(ctx)
		return err
	})
}

// retakeReady replaces the ready snapshot with one of the VM as it is now.
func (l *Lab) retakeReady(ctx context.Context) error {
	snaps, uuid, err := l.snapshots()
	if err != nil {
		return err
	}
	if l.State().Ready != nil {
		if err := snaps.Delete(ctx, uuid, ReadySnapshot); err != nil {
			return err
		}
		if err := l.recordReady(nil); err != nil {
			return err
		}
	}
	return l.takeReady(ctx)
}
