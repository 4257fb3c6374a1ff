GO ?= go
# How every silo binary is built: users', the tests' and the benchmarks'.
# Statically: a dynamic loader costs every command 2-3 ms at start-up here.
# A static glibc cannot look up hosts or users, so Go does those itself
# (netgo, osusergo). urfave/cli's markdown docs cost another millisecond.
export GOFLAGS := -tags=urfave_cli_no_docs,netgo,osusergo -ldflags=-extldflags=-static
BIN ?= bin/silo

.PHONY: build install demo test fuzz deps bench-storage bench-cli bench-run bench-backup bench-tree bench-net bench-quota bench-attach bench-refresh bench-api bench-remote bench-hostcopy bench-housekeep bench-metrics

build:
	$(GO) build -o $(BIN) ./cmd/silo

# The binary, its systemd unit (whose ExecStart names where the binary
# goes) and the shells' completions, where each looks for them under
# PREFIX; DESTDIR stages them, as a package build does.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/silo
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/bin/silo |ExecStart=$(BINDIR)/silo |' dist/silo.service >$(DESTDIR)$(UNITDIR)/silo.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/silo.service
	install -D -m 0644 cmd/silo/completion.bash $(DESTDIR)$(BASHCOMPDIR)/silo
	install -D -m 0644 cmd/silo/completion.zsh $(DESTDIR)$(ZSHCOMPDIR)/_silo

# silo's main job end to end, in a throw-away state directory.
demo: deps
	hack/demo.sh

deps:
	hack/install-deps.sh

# The whole test suite, on real filesystems: needs root, loop devices and
# zfs-fuse (or OpenZFS), which deps and hack/zfs-fuse.sh provide. One
# package at a time: the storage tests' zfs commands and the containers
# that the command's tests start on zfs-fuse do not mix well under load.
# The command's tests take about 4 minutes here, too close to go test's
# default limit of 10 for a slower machine.
test: deps
	hack/zfs-fuse.sh start
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 25m ./...
	$(MAKE) fuzz

# Each fuzz target for a number of executions beyond its seeds (which
# every go test runs), about 15 s of work each here, all at once with one
# worker each: go test -fuzz takes one package and one target at a time,
# and in turn they would add a minute to the suite. A count, not a time:
# a -fuzztime duration races Go's fuzzing coordinator at its deadline on
# a loaded machine and fails with "context deadline exceeded" having found
# nothing (go.dev/issue/75804). The extraction targets' coverage varies a
# little from run to run, so that minimizing an input that seemed new is
# bounded, or it would take all the time. An input that fails is written
# under the package's testdata/fuzz/: see testdata/README.md.
FUZZ_TARGETS := internal/archive:FuzzExtract:3000 image:FuzzRender:80000 image:FuzzParseMetadata:80000 internal/backup:FuzzRead:3500

fuzz:
	pids=""; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$${rest%%:*}\$$" -fuzztime "$${rest#*:}x" -fuzzminimizetime 10x -parallel 1 & \
		pids="$$pids $$!"; \
	done; rc=0; for p in $$pids; do wait $$p || rc=1; done; exit $$rc

bench-storage: deps
	hack/zfs-fuse.sh start
	$(GO) run ./hack/storagebench

bench-cli: deps
	hack/zfs-fuse.sh start
	$(GO) run ./hack/clibench $(BENCH_ARGS)

# Each systemd takes several inotify instances, and the kernel's default
# of 128 per user stops a host at a few dozen containers: raise it, as
# LXD's production set-up does.
bench-run: deps
	sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576
	$(GO) run ./hack/runbench

# Unprivileged create and start on a small and a ten times larger tree.
bench-tree: deps
	$(GO) run ./hack/treebench

bench-backup: deps
	$(GO) run ./hack/backupbench

# Write throughput in an instance with and without a root disk quota.
bench-quota: deps
	hack/zfs-fuse.sh start
	$(GO) run ./hack/quotabench $(BENCH_ARGS)

# volume attach and detach on a running instance, on each driver.
bench-attach: deps
	hack/zfs-fuse.sh start
	$(GO) run ./hack/attachbench $(BENCH_ARGS)

# The background pass (silo housekeep) over 100 scheduled instances.
bench-housekeep: deps
	$(GO) run ./hack/housekeepbench $(BENCH_ARGS)

# Time and bytes moved of copy --refresh after a 1 MB change.
bench-refresh: deps
	hack/zfs-fuse.sh start
	$(GO) run ./hack/refreshbench $(BENCH_ARGS)

# silo list h2: over mutual TLS from a second host (two network namespaces),
# and silo export h2:NAME and import FILE h2:NAME of a 256 MB instance.
bench-remote: deps
	$(GO) run ./hack/remotebench $(BENCH_ARGS)

# copy and copy --refresh between two hosts (two network namespaces),
# beside the local export.
bench-hostcopy: deps
	$(GO) run ./hack/hostcopybench $(BENCH_ARGS)

# Network readiness, throughput, the nic's cost at launch, and with
# BENCH_ARGS="-density N" how many Debian instances one network holds
# (which needs the inotify limits that bench-run raises).
bench-net: deps
	# Hundreds of instances: systemd's inotify instances, and a session
	# keyring each, charged to the host user their root is.
	sysctl -qw fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=1048576 kernel.keys.maxkeys=2000 kernel.keys.maxbytes=2000000
	$(GO) run ./hack/netbench $(BENCH_ARGS)

# silo serve: GET /1.0/instances?recursion=1 with 100 instances over the
# unix socket, the server's RSS, and exec through the API.
bench-api: deps
	$(GO) run ./hack/apibench $(BENCH_ARGS)

# silo metrics, and a completion, with 20 running instances.
bench-metrics: deps
	$(GO) run ./hack/metricsbench $(BENCH_ARGS)
