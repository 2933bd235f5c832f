package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/labctl/labctl/lab"
	"github.com/labctl/labctl/lab/host"
	"github.com/labctl/labctl/lab/spec"
)

func cacheCmd(g *globals) *cobra.Command {
	cache := &cobra.Command{
		Use:   "cache",
		Short: "list and prune provisioned layers (cache ls, cache prune)",
		Long: "A provisioned layer is the disks of a lab right after its provisioning, kept by `labctl up`\n" +
			"and keyed by everything that shaped them (box, spec fields that reach the guest, labctl): a new\n" +
			"lab of the same key boots from copy-on-write overlays of it. Records live in " + host.CacheDir() + "/layers,\n" +
			"the disks in labctl's libvirt pool.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{fmt.Errorf("usage: labctl cache ls | labctl cache prune [--older-than D] [--max-size SIZE] [--all]")}
		},
	}
	cache.AddCommand(cacheLsCmd(g), cachePruneCmd(g))
	return cache
}

func cacheLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "list the provisioned layers: key, box, lab made from, size, made, last used, in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := lab.OpenLayerCache(cmd.Context(), g.libvirt)
			if err != nil {
				return err
			}
			list, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(list) == 0 {
				fmt.Fprintln(out, "no provisioned layers: `labctl up` keeps one after provisioning a new lab")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tBOX\tFROM LAB\tSIZE\tMADE\tLAST USED\tPROVISIONING SAVED\tIN USE")
			var total int64
			for _, l := range list {
				used := "-"
				if !l.Used.IsZero() {
					used = l.Used.Local().Format("2006-01-02 15:04")
				}
				inUse := "no"
				if l.InUse {
					inUse = "yes"
				}
				if l.Broken != "" {
					inUse += " (broken: " + l.Broken + "; prune drops it)"
				}
				fmt.Fprintf(tw, "%s\tlabctl/%s\t%s\t%d MiB\t%s\t%s\t%s\t%s\n", l.Key, l.Flavour, l.From, l.Bytes()>>20,
					l.Created.Local().Format("2006-01-02 15:04"), used, l.ProvisionTook.Round(time.Second), inUse)
				total += l.Bytes()
			}
			tw.Flush()
			fmt.Fprintf(out, "%d layer(s), %d MiB\n", len(list), total>>20)
			return nil
		},
	}
}

func cachePruneCmd(g *globals) *cobra.Command {
	var older time.Duration
	var maxSize string
	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "drop broken layers, those not used for --older-than, then the least recently used beyond --max-size (--all: every one); layers a VM is backed by stay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var maxBytes int64
			if maxSize != "" {
				mib, err := spec.Disk{Size: maxSize}.SizeMiB()
				if err != nil {
					return usageError{fmt.Errorf("--max-size %q is not a size: write it like 20GiB or 500MiB", maxSize)}
				}
				maxBytes = mib << 20
			}
			c, err := lab.OpenLayerCache(cmd.Context(), g.libvirt)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			n := 0
			err = c.Prune(cmd.Context(), older, maxBytes, all, func(line string) { n++; fmt.Fprintln(out, line) })
			if err == nil && n == 0 {
				fmt.Fprintln(out, "nothing to drop")
			}
			return err
		},
	}
	prune.Flags().DurationVar(&older, "older-than", 0, "drop layers neither made nor used for this long (168h: a week)")
	prune.Flags().StringVar(&maxSize, "max-size", "", "then drop the least recently used until the rest fit (20GiB, 500MiB)")
	prune.Flags().BoolVar(&all, "all", false, "drop every layer no VM is backed by")
	return prune
}
