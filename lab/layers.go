package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/labctl/labctl/lab/action"
	"github.com/labctl/labctl/lab/build"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/labdir"
	"github.com/labctl/labctl/lab/layer"
	"github.com/labctl/labctl/lab/spec"
	"github.com/labctl/labctl/provision/remote"
)

// Up's phases for provisioned layers: which layer a new VM boots from (or why none), and
// keeping the layer of a lab provisioned from its box.
const (
	PhaseLayer     = "layer"
	PhaseKeepLayer = "keep layer"
)

// LayerStore is where the records of provisioned layers live: <cache>/layers.
func LayerStore() layer.Store { return layer.Store{Dir: filepath.Join(host.CacheDir(), "layers")} }

// layerInputs are the inputs of the lab's layer, and its box's flavour; nil when the lab has
// none (a provider that keeps none, a box labctl does not build).
func (l *Lab) layerInputs(p Provider, boxKey string) (*layer.Inputs, string, error) {
	ls := p.Layers()
	if ls == nil || l.Spec.Box.Release == "" {
		return nil, "", nil
	}
	r, err := build.BoxRecipeFor(l.Spec)
	if err != nil {
		return nil, "", err
	}
	vol, err := ls.BaseVolume(r.Flavour)
	if err != nil {
		return nil, "", err
	}
	files, images, err := guestInputs(l.Spec)
	if err != nil {
		return nil, "", err
	}
	return &layer.Inputs{Box: boxKey, BoxVolume: vol, Guest: layer.GuestOf(*l.Spec), Files: files, Images: images}, r.Flavour, nil
}

// guestInputs are the sha256 of the guest files rendered for spec s (for its LXC version) and
// the keys of its containers' local images.
func guestInputs(s *spec.Spec) (string, []string, error) {
	files, images, err := specImages(s)
	if err != nil {
		return "", nil, fmt.Errorf("layer: %w", err)
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%o\x00%s\x00%q\x00%s\n", f.Target, f.Path, f.Owner, f.Mode, f.Content, f.Lines, f.Owns)
	}
	var keys []string
	for _, im := range images {
		keys = append(keys, im.container+"="+im.recipe.Key())
	}
	return hex.EncodeToString(h.Sum(nil)), keys, nil
}

// pickLayer decides what a new VM boots from: the lab's layer when it is cached and whole
// (checked: size and sha256 of each disk), else the box, the layer to be kept after the
// provisioning. A layer that fails its check is dropped. The data disk it makes for the VM
// is recorded as the lab's at once (destroy, and up's rollback, remove it).
func (u *upRun) pickLayer(ctx context.Context) (*action.Undo, error) {
	l, p := u.lab, u.boot.p
	in, flavour, err := l.layerInputs(p, u.boot.boxKey)
	if err != nil {
		fmt.Fprintf(u.out, "layer: none for this lab (%v): provisioning from the box\n", err)
		return nil, nil
	}
	if in == nil {
		return nil, nil
	}
	if u.o.NoLayer {
		fmt.Fprintln(u.out, "layer: not used (--no-layer): the VM is provisioned from its box, and no layer is kept")
		return nil, nil
	}
	u.layerIn, u.flavour = in, flavour
	rec, err := LayerStore().Get(in.Key())
	if err == nil && u.o.FreshLayer {
		if err := u.lab.dropLayer(ctx, p.Layers(), rec); err != nil {
			return nil, err
		}
		fmt.Fprintf(u.out, "layer %s: dropped (a fresh one was asked for)\n", rec.Key)
		err = layer.ErrNone
	}
	if errors.Is(err, layer.ErrNone) {
		fmt.Fprintf(u.out, "layer %s: none cached: provisioning from the box, then keeping the layer\n", in.Key())
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := p.Layers().CheckLayer(rec); err != nil {
		fmt.Fprintf(u.out, "layer %s refused: %v\n  dropped; provisioning from the box instead, and keeping a new layer after\n", rec.Key, err)
		return nil, u.lab.dropLayer(ctx, p.Layers(), rec)
	}
	box, disk, err := p.Layers().UseLayer(ctx, l, rec)
	if err != nil {
		return nil, err
	}
	if err := l.recordLayer(LayerUse{Key: rec.Key, Box: box, Disk: disk}); err != nil {
		return nil, err
	}
	if _, _, err := l.writeVagrantfile(p); err != nil {
		return nil, err
	}
	u.layer = &rec
	fmt.Fprintf(u.out, "layer %s: whole (checked in %s); the VM boots from it: lab %s as provisioned on %s (provisioning took %s), its checks run again\n",
		rec.Key, time.Since(start).Round(100*time.Millisecond), rec.From, rec.Created.Format("2006-01-02 15:04"), rec.ProvisionTook.Round(time.Second))
	return nil, nil
}

// dropLayer deletes a layer's disks and record, unless a VM is backed by them.
func (l *Lab) dropLayer(ctx context.Context, ls Layers, rec layer.Layer) error {
	used, err := ls.LayersInUse(ctx)
	if err != nil {
		return err
	}
	if used[rec.Root.Name] || used[rec.Data.Name] {
		return fmt.Errorf("layer %s cannot be dropped: a VM's disks are backed by it (`labctl cache ls` says which layers are in use); destroy that lab, or run with --no-layer", rec.Key)
	}
	if err := ls.DropLayer(ctx, rec); err != nil {
		return err
	}
	return LayerStore().Remove(rec.Key)
}

// newIdentity gives a VM booted from a layer its own SSH host keys and machine-id (the layer
// holds those of the lab that made it), then connects again, pinning the new host key. The
// host keys are ed25519 and ECDSA: an RSA key of 3072 bits took 8.4 s to make under TCG
// (ed25519 0.13 s), and every SSH client labctl or Vagrant runs speaks ed25519.
func (u *upRun) newIdentity(ctx context.Context) error {
	l := u.lab
	res, err := u.conn.VM().Run(ctx, remote.Cmd{Sudo: true, Line: "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && ssh-keygen -q -t ecdsa -N '' -f /etc/ssh/ssh_host_ecdsa_key && rm -f /etc/machine-id && systemd-machine-id-setup >/dev/null && systemctl reload ssh"})
	if err == nil && !res.OK() {
		err = fmt.Errorf("exit %d: %s", res.ExitCode, res.Stderr)
	}
	if err != nil {
		return fmt.Errorf("the VM booted from layer %s could not get host keys and a machine-id of its own: %w", u.layer.Key, err)
	}
	u.close()
	u.conn = nil
	if _, err := l.StopAgent(ctx); err != nil {
		return err
	}
	if err := os.Remove(l.KnownHosts()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	c, err := l.Connect(ctx, u.o.Connect)
	u.conn = c
	if err == nil {
		fmt.Fprintln(u.out, "layer: the VM has host keys and a machine-id of its own, the new host key pinned")
	}
	return err
}

// keepLayer makes the layer of a lab just provisioned from its box, from its ready snapshot.
// Failing to keep it does not fail up (the lab is up): it says why and removes what it made.
func (u *upRun) keepLayer(ctx context.Context) (*action.Undo, error) {
	key := u.layerIn.Key()
	rec, took, err := u.captureLayer(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(u.out, "layer %s: not kept (%v); the lab is up all the same\n", key, err)
	case rec == nil:
		fmt.Fprintf(u.out, "layer %s: kept meanwhile by another run\n", key)
	default:
		fmt.Fprintf(u.out, "layer %s: kept in %s (root %s, data %s): a new lab of this spec boots from it\n",
			key, took.Round(100*time.Millisecond), mib(rec.Root.Size), mib(rec.Data.Size))
	}
	return nil, nil
}

// captureLayer makes and records the layer, holding its lock; nil when another run kept it
// meanwhile. What a failed capture made is removed.
func (u *upRun) captureLayer(ctx context.Context) (*layer.Layer, time.Duration, error) {
	l, ls, store := u.lab, u.boot.p.Layers(), LayerStore()
	key := u.layerIn.Key()
	if err := os.MkdirAll(store.Dir, 0o755); err != nil {
		return nil, 0, err
	}
	lock, err := host.WaitLock(ctx, filepath.Join(store.Dir, key+".lock"), "layer "+key, func(b *host.BusyError) {
		fmt.Fprintf(u.out, "layer %s: waiting for pid %d (%s)\n", key, b.PID, b.What)
	})
	if err != nil {
		return nil, 0, err
	}
	defer lock.Unlock()
	if _, err := store.Get(key); err == nil {
		return nil, 0, nil
	}
	log, err := l.OpenLog(labdir.LayerLog)
	if err != nil {
		return nil, 0, err
	}
	defer log.Close()
	start := time.Now()
	rec, err := ls.CaptureLayer(ctx, l, *u.layerIn, u.flavour, log)
	if err == nil {
		rec.ProvisionTook = u.provisionTook
		err = store.Put(rec)
	}
	if err != nil {
		if derr := ls.DropLayer(context.WithoutCancel(ctx), rec); derr != nil {
			err = fmt.Errorf("%w; and what was made of it could not be removed: %v", err, derr)
		}
		return nil, 0, err
	}
	return &rec, time.Since(start), nil
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// markLayerUsed notes on the layer's record that a lab booted from it now.
func markLayerUsed(rec *layer.Layer, w io.Writer) {
	rec.Used = time.Now().UTC()
	if err := LayerStore().Put(*rec); err != nil {
		fmt.Fprintf(w, "layer %s: could not note its use: %v\n", rec.Key, err)
	}
}
