package lab

import (
	"context"
	"io"

	"github.com/labctl/labctl/lab/vagrant"
)

// SnapshotSave saves a named snapshot of the whole VM with `vagrant snapshot save`, holding
// the lab's lock.
func (l *Lab) SnapshotSave(ctx context.Context, out io.Writer, name string) error {
	return l.locked(ctx, "snapshot save", out, func(v *vagrant.Driver) error { return v.SnapshotSave(ctx, name) })
}

// SnapshotRestore brings the VM back to a named snapshot with `vagrant snapshot restore`,
// holding the lab's lock; the lab's agent ends first (its links do not survive it).
func (l *Lab) SnapshotRestore(ctx context.Context, out io.Writer, name string) error {
	return l.locked(ctx, "snapshot restore", out, func(v *vagrant.Driver) error {
		if _, err := l.StopAgent(ctx); err != nil {
			return err
		}
		return v.SnapshotRestore(ctx, name)
	})
}
