package api

import "time"

// Image is a root filesystem with its metadata, as imported, built or
// published (LXD's Image, less what silo does not have: public images,
// auto-update, expiry, profiles, last use).
type Image struct {
	// Fingerprint is the SHA-256 of the image's file (of both, metadata
	// then rootfs, for a split image), in hex.
	Fingerprint string `json:"fingerprint"`
	// Aliases are the image's other names.
	Aliases []ImageAlias `json:"aliases"`
	// Type is always "container".
	Type string `json:"type"`
	// Architecture is the one metadata.yaml names; absent for a plain
	// root filesystem tarball, which has none.
	Architecture string `json:"architecture,omitempty"`
	// Size is the bytes of the image's file(s) as imported.
	Size int64 `json:"size"`
	// Properties are metadata.yaml's (os, release, description...);
	// empty, never null, when it has none.
	Properties map[string]string `json:"properties"`
	// CreatedAt is when the image was made, as metadata.yaml says;
	// absent when there is no metadata.yaml.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// UploadedAt is when the image came to this host.
	UploadedAt time.Time `json:"uploaded_at"`
	// Layout is how the image's files are laid out: rootfs (a plain
	// tarball), unified (LXD's one tarball) or split (LXD's metadata and
	// rootfs pair).
	Layout string `json:"layout"`
	// RootfsFormat is tar or squashfs: a split image's rootfs file.
	RootfsFormat string `json:"rootfs_format,omitempty"`
	// Compression is the compression of the image's (first) file: zstd,
	// gzip, xz, bzip2 or none.
	Compression string `json:"compression"`
	// Templates lists the paths that the image's templates render,
	// sorted; absent when it has none.
	Templates []string `json:"templates,omitempty"`
}

// ImageAlias is another name of an image.
type ImageAlias struct {
	// Name is the alias, as in debian/12.
	Name string `json:"name"`
}
