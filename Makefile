# labctl: two commands do all the set-up on a fresh Debian 12 machine.
#   make up    installs host packages, builds the box if missing, brings the default lab up
#   make test  runs every test: lint, unit + integration (real sshd), a real VM, the e2e suite,
#              and (as root) the VM test and the suite again as a normal user (make test-user)
# A normal user runs `sudo make deps` once, then `make up` and `make test-e2e` as itself.
PRESET ?= bookworm
LAB    ?= $(PRESET)
BIN    := $(CURDIR)/bin/labctl
GO     ?= go
# What `labctl version` says: the nearest tag (or the commit), and the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: all build deps up down lint test test-unit test-faults test-deb test-vm test-interrupt test-e2e test-user test-chaos matrix bench deb update-golden

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags="$(LDFLAGS)" -o $(BIN) ./cmd/labctl

deps:
	./scripts/deps.sh

up: deps build
	$(BIN) up --preset $(PRESET)

down: build
	$(BIN) destroy --preset $(PRESET)

# gofmt, go vet and staticcheck (a tool dependency in go.mod).
lint:
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "not gofmt-clean (run gofmt -w): $$files"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# Every test, fast ones first; each phase prints its duration.
test: deps build
	./scripts/test.sh $(PRESET)

test-unit:
	$(GO) test ./...

# The fault tests that need no VM (TestFault* in every package), as one table: bad inputs
# rejected, faults survived, anything lost (must be 0). scripts/test.sh runs it after unit.
test-faults:
	./scripts/faults.sh

# The Debian package (bin/labctl_VERSION_amd64.deb): the binary, completions, man pages.
deb: build
	./scripts/deb.sh $(BIN)

# The package installed into a clean Debian 12 chroot, its dependencies resolved by apt, and
# labctl version, render, test --help and doctor run there (as root; make test runs it).
test-deb: build
	./scripts/deb-test.sh

test-vm: build
	LABCTL_VM_TESTS=1 $(GO) test -tags vm -count=1 -timeout 30m -v -run TestVM ./lab/

# Interrupts provision in every step and up in every phase on a real lab, then checks the next
# run converges (about an hour under TCG; not part of make test).
test-interrupt: build
	LABCTL_VM_TESTS=1 $(GO) test -tags vm -count=1 -timeout 150m -v -run TestVMInterruptEveryStep ./cmd/labctl/

# The VM test and the e2e suite as the normal user labctl-ci, on its own libvirt daemon, and the
# check that it wrote nothing outside its home (run as root; the last phase of make test).
test-user:
	./scripts/user-run.sh $(PRESET)

test-e2e: build
	$(GO) tool ginkgo -v --timeout 60m ./e2e -- -preset $(PRESET) -up -labctl $(BIN)

# The kernel/LXC matrix (labctl matrix run): every cell this host runs, the others skipped with
# the reason; reports in tmp/matrix/. MATRIX_ARGS="--cells bookworm,forky --jobs 2" narrows it.
matrix: deps build
	$(BIN) matrix run $(MATRIX_ARGS)

# The seeded chaos soak on a real lab of its own (named chaos): ROUNDS rounds of an everyday verb
# with one fault each, chosen and timed by SEED; after each, up converges, provision changes
# nothing, the canaries are there and nothing is left behind. FROM=R ROUNDS=1 replays round R.
SEED   ?= 1
ROUNDS ?= 10
FROM   ?= 1
test-chaos: build
	$(GO) run ./scripts/chaos -seed $(SEED) -rounds $(ROUNDS) -from $(FROM) -preset $(PRESET) -labctl $(BIN) $(CHAOS_ARGS)

bench: build
	$(GO) run ./scripts/bench -preset $(PRESET) -labctl $(BIN) $(BENCH_ARGS)

update-golden:
	$(GO) test ./lab/render -run Golden -update
