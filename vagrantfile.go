// Package labctl holds what must live at the repository root: the Vagrantfile template
// (go:embed cannot reach a parent directory from lab/).
package labctl

import _ "embed"

// VagrantfileTemplate is Vagrantfile.tmpl, rendered by render.Vagrantfile (lab/render).
//
//go:embed Vagrantfile.tmpl
var VagrantfileTemplate string
