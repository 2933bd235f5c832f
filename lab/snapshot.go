package lab

import (
	"context"
	"io"
)

// SnapshotSave saves a named snapshot of the whole VM with `vagrant snapshot save`, holding
// the lab's lock.
func (l *Lab) SnapshotSave(ctx context.Context, out io.Writer, name string) error {
	return l.withVagrant(ctx, "snapshot save", out, func(v vagrantSnapshots) error { return v.SnapshotSave(ctx, name) })
}

// SnapshotRestore brings the VM back to a named snapshot with `vagrant snapshot restore`,
// holding the lab's lock; the lab's agent ends first (its links do not survive it).
func (l *Lab) SnapshotRestore(ctx context.Context, out io.Writer, name string) error {
	return l.withVagrant(ctx, "snapshot restore", out, func(v vagrantSnapshots) error {
		if _, err := l.StopAgent(ctx); err != nil {
			return err
		}
		return v.SnapshotRestore(ctx, name)
	})
}

// vagrantSnapshots is what the snapshot verbs need of the Vagrant driver.
type vagrantSnapshots interface {
	SnapshotSave(ctx context.Context, name string) error
	SnapshotRestore(ctx context.Context, name string) error
}

// withVagrant runs fn with the lab's lock held for verb and its Vagrant driver open.
func (l *Lab) withVagrant(ctx context.Context, verb string, out io.Writer, fn func(vagrantSnapshots) error) error {
	unlock, err := l.Lock(verb)
	if err != nil {
		return err
	}
	defer unlock()
	v, closeV, err := l.Vagrant(out)
	if err != nil {
		return err
	}
	defer closeV()
	return fn(v)
}
