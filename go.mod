module github.com/labctl/labctl

go 1.26.8

require (
	github.com/bramvdbogaerde/go-scp v1.6.1
	github.com/hashicorp/go-version v1.9.0
	golang.org/x/crypto v0.59.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/sys v0.50.0 // indirect
