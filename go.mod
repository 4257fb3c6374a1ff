module github.com/silo-dev/silo

go 1.26.8

require (
	github.com/containerd/btrfs/v2 v2.0.0
	github.com/mistifyio/go-zfs/v3 v3.0.1
	go.etcd.io/bbolt v1.5.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/google/uuid v1.2.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
)
