package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/layer"
)

// CachedLayer is a layer as `labctl cache ls` shows it.
type CachedLayer struct {
	layer.Layer
	// InUse says a VM's disks are backed by it (prune keeps it).
	InUse bool
	// Broken says why it cannot be booted from ("": it can): its disks differ from the record
	// (a size check here; up checks the sha256 too) or its box's volume is gone (a new build
	// of the box was added). Prune drops it whatever the limits.
	Broken string
}

// LayerCache is the provisioned layers of one libvirt daemon's pool.
type LayerCache struct {
	ls    Layers
	store layer.Store
}

// OpenLayerCache opens the layers of the libvirt daemon named by choice (session, system or
// auto, as lab.yaml's libvirt), starting it when it does not answer.
func OpenLayerCache(ctx context.Context, choice string) (*LayerCache, error) {
	virt, err := host.LibvirtFor(choice)
	if err != nil {
		return nil, err
	}
	if err := virt.Start(ctx, io.Discard); err != nil {
		return nil, err
	}
	return &LayerCache{ls: libvirt{virt}, store: LayerStore()}, nil
}

// List is every cached layer, the newest first, with whether a VM is backed by it.
func (c *LayerCache) List(ctx context.Context) ([]CachedLayer, error) {
	recs, err := c.store.List()
	if err != nil {
		return nil, err
	}
	used, err := c.ls.LayersInUse(ctx)
	if err != nil {
		return nil, err
	}
	var out []CachedLayer
	for _, r := range recs {
		out = append(out, CachedLayer{Layer: r, InUse: used[r.Root.Name] || used[r.Data.Name], Broken: c.ls.BrokenLayer(r)})
	}
	return out, nil
}

// Prune drops the layers layer.Prune picks (all with all) except those a VM is backed by, and
// reports each: what it dropped, and what it kept and why.
func (c *LayerCache) Prune(ctx context.Context, olderThan time.Duration, maxBytes int64, all bool, report func(string)) error {
	list, err := c.List(ctx)
	if err != nil {
		return err
	}
	var recs []layer.Layer
	inUse := map[string]bool{}
	for _, l := range list {
		recs = append(recs, l.Layer)
		inUse[l.Key] = l.InUse
	}
	pick := layer.Prune(recs, time.Now(), olderThan, maxBytes)
	if all {
		pick = recs
	}
	for _, l := range list {
		if l.Broken != "" && !slices.ContainsFunc(pick, func(r layer.Layer) bool { return r.Key == l.Key }) {
			pick = append(pick, l.Layer)
		}
	}
	for _, r := range pick {
		if inUse[r.Key] {
			report(fmt.Sprintf("kept    %s: a VM's disks are backed by it (destroy that lab first)", r.Key))
			continue
		}
		if err := c.ls.DropLayer(ctx, r); err != nil {
			return err
		}
		if err := c.store.Remove(r.Key); err != nil {
			return err
		}
		report(fmt.Sprintf("dropped %s (%s, made from lab %s on %s)", r.Key, mib(r.Bytes()), r.From, r.Created.Format("2006-01-02 15:04")))
	}
	return nil
}
